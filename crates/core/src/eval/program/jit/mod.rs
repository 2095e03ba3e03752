//! Native code for a compiled [`super::Program`], generated with Cranelift at load.
//!
//! Why: the program interpreter pays a dispatch and a match per node, so a ten-clause
//! condition cost 15× a hand-written Rust function over a plain struct (docs/PERFORMANCE.md).
//! Machine code for the condition does what that function does: loads from the context at
//! fixed offsets, compares against immediates, and branches.
//!
//! **The native code only answers the common case.** Whenever anything is unusual (an unset
//! field, an overflow, a division by zero, a product that needs 128 bits, a read of a type the
//! checker rules out) it returns [`DEFER`] and the caller runs the interpreter, which defines
//! the language. Evaluation is pure and goes left to right in both, so deferring gives the
//! interpreter's exact answer or error, and the native code never has to reproduce an error,
//! only to know when to step aside. A property test checks that every native answer equals the
//! reference interpreter's (`tests/properties.rs`).
//!
//! **What the code touches.** The generated function reads (a) fields of [`Context`] at offsets
//! taken from `offset_of!`, (b) the bytes of the request's style after comparing its length,
//! (c) breaker states below the slice's length, and it calls two helpers: [`abi::read_field`]
//! for a declared field, [`abi::read_measured`] for a backend's measured figure. It refers to no memory of the program (literals are immediates), so clones
//! of a program share the code, which is freed when the last clone drops.
//!
//! A program the generator has no code for (one that falls back to the tree walker), or a host
//! where Cranelift cannot start, simply has no native code; the interpreter runs it.
//!
//! The work is in three files: this one owns the machine code (the JIT module, the host's
//! instruction set, the function pointer a program calls and what stands in before and
//! without code); `emit.rs` turns a program's nodes into Cranelift IR; `abi.rs` is what the
//! generated code assumes about the memory it reads (the context's layout) and the helpers it
//! calls.

mod abi;
mod emit;

use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId};

use super::Node;
use crate::breaker::BreakerState;
use crate::eval::Context;

/// The native code's answer: false.
pub(super) const FALSE: u32 = 0;
/// The native code's answer: true.
pub(super) const TRUE: u32 = 1;
/// The native code's answer: run the interpreter.
pub(super) const DEFER: u32 = 2;

/// Code that reads only the context's own scalars: `(context)`.
type Lean = unsafe extern "C" fn(*const u8) -> u32;
/// Code that also reads the style or the breakers:
/// `(context, style pointer or null, style length, breakers pointer, breakers length)`.
type Full = unsafe extern "C" fn(*const u8, *const u8, usize, *const BreakerState, usize) -> u32;

/// A condition's machine code. Cloning shares it.
#[derive(Clone)]
pub(super) struct Native {
    /// The generated function's address.
    address: usize,
    /// Whether it has the [`Full`] signature, else [`Lean`]. Most conditions read no style
    /// and no breaker, and then passing only the context saves the call a third of its
    /// argument set-up.
    full: bool,
    _code: Arc<Code>,
}

/// Owns the executable memory. The module sits in a mutex only so that `Code` is `Sync`;
/// nothing touches it again until the drop.
struct Code(Mutex<Option<JITModule>>);

impl Drop for Code {
    fn drop(&mut self) {
        let module = match self.0.get_mut() {
            Ok(m) => m.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(module) = module {
            // SAFETY: the only pointer into this memory is `Native::entry`, and every `Native`
            // holding it also holds an `Arc` to this `Code`, so none is left to call it.
            unsafe { module.free_memory() };
        }
    }
}

impl Native {
    /// Generates code for each of `roots` in one module, so that the functions sit together
    /// in memory (a policy's rules share pages instead of taking one each, which kept a
    /// 1,000-rule decision from running out of instruction-TLB entries). `None` for a root
    /// the generator does not cover, or for all of them when the host has no usable JIT.
    pub(super) fn compile_all(roots: &[&Node]) -> Vec<Option<Native>> {
        // A bug in code generation must not fail a decision: the interpreter stands in.
        std::panic::catch_unwind(|| Native::generate_all(roots))
            .unwrap_or_else(|_| vec![None; roots.len()])
    }

    fn generate_all(roots: &[&Node]) -> Vec<Option<Native>> {
        let wanted = |root: &Node| !matches!(root, Node::Const(_)) && emit::covered(root);
        let Some(isa) = host().filter(|_| roots.iter().any(|r| wanted(r))) else {
            return vec![None; roots.len()];
        };
        let mut module = JITModule::new(JITBuilder::with_isa(isa.clone(), default_libcall_names()));
        let mut builder = FunctionBuilderContext::new();
        let defined: Vec<Option<(FuncId, bool)>> = roots
            .iter()
            .map(|root| {
                let full = emit::reads_references(root);
                wanted(root)
                    .then(|| emit::define(&mut module, &mut builder, root, full))
                    .flatten()
                    .map(|id| (id, full))
            })
            .collect();
        if defined.iter().all(Option::is_none) || module.finalize_definitions().is_err() {
            // SAFETY: no pointer into the module's memory was handed out.
            unsafe { module.free_memory() };
            return vec![None; roots.len()];
        }
        let addresses: Vec<Option<(usize, bool)>> = defined
            .iter()
            .map(|d| d.map(|(id, full)| (module.get_finalized_function(id) as usize, full)))
            .collect();
        let code = Arc::new(Code(Mutex::new(Some(module))));
        addresses
            .into_iter()
            .map(|a| {
                a.map(|(address, full)| Native {
                    address,
                    full,
                    _code: Arc::clone(&code),
                })
            })
            .collect()
    }
}

/// The native code's answer before the code exists: generate it, then ask again.
pub(super) const PENDING: u32 = 3;

/// Stands in for code not generated yet.
extern "C" fn pending(_: *const u8) -> u32 {
    PENDING
}

/// Stands in for a program without machine code: the interpreter answers.
extern "C" fn no_code(_: *const u8) -> u32 {
    DEFER
}

/// A program's machine code, filled in once, and where to call it.
///
/// Why the addresses sit apart from [`Native`]: a call is then one load, a test and the call
/// itself, with no check that the code exists (before it does, `lean` holds [`pending`],
/// whose answer sends the caller to generate it) and none for a program without code (it
/// holds [`no_code`]). A program whose code reads the style or the breakers keeps `lean` at 0
/// and its address in `full`. `full` is stored before `lean` (release) and read after it
/// (acquire), so a reader that sees `lean == 0` also sees `full`.
pub(super) struct NativeCell {
    lean: AtomicUsize,
    full: AtomicUsize,
    native: OnceLock<Option<Native>>,
}

impl NativeCell {
    pub(super) fn new() -> NativeCell {
        NativeCell {
            lean: AtomicUsize::new(pending as *const () as usize),
            full: AtomicUsize::new(0),
            native: OnceLock::new(),
        }
    }

    /// Runs the code: [`FALSE`], [`TRUE`], [`DEFER`] or [`PENDING`].
    #[inline(always)]
    pub(super) fn run(&self, ctx: &Context<'_>) -> u32 {
        let context = ptr::from_ref(ctx).cast();
        let lean = self.lean.load(Ordering::Acquire);
        // SAFETY: a nonzero `lean` is `pending`, `no_code` or generated code with the `Lean`
        // signature; a zero one means `full` holds generated code with the `Full` signature.
        // The code reads only what the module docs list, each within the bounds passed here,
        // and `native` keeps it alive as long as `self`.
        unsafe {
            if lean != 0 {
                std::mem::transmute::<usize, Lean>(lean)(context)
            } else {
                let full = std::mem::transmute::<usize, Full>(self.full.load(Ordering::Acquire));
                let (style, style_len) = match ctx.style {
                    Some(s) => (s.as_ptr(), s.len()),
                    None => (ptr::null(), 0),
                };
                let breakers = ctx.breakers;
                full(context, style, style_len, breakers.as_ptr(), breakers.len())
            }
        }
    }

    /// Whether generation was already tried (with or without code as the result).
    pub(super) fn tried(&self) -> bool {
        self.native.get().is_some()
    }

    /// Whether generation was tried and gave machine code.
    pub(super) fn has_code(&self) -> bool {
        matches!(self.native.get(), Some(Some(_)))
    }

    /// Stores `native` unless generation was tried already (by another thread, say: its code
    /// is as good), and points the entry at whichever was kept. Whether the program has
    /// machine code. (The entry is stored every time, with the same value: a function's
    /// address cannot tell whether it was [`pending`], since Rust may copy a small function
    /// into each crate that uses it.)
    pub(super) fn publish(&self, native: Option<Native>) -> bool {
        let _ = self.native.set(native);
        let kept = self
            .native
            .get()
            .and_then(Option::as_ref)
            .map(|n| (n.address, n.full));
        match kept {
            Some((address, true)) => {
                self.full.store(address, Ordering::Release);
                self.lean.store(0, Ordering::Release);
            }
            Some((address, false)) => self.lean.store(address, Ordering::Release),
            None => self
                .lean
                .store(no_code as *const () as usize, Ordering::Release),
        }
        kept.is_some()
    }
}

impl Clone for NativeCell {
    fn clone(&self) -> NativeCell {
        // The entry first: once it points at code, `native` (stored before it) holds that code.
        let (lean, full) = (
            self.lean.load(Ordering::Acquire),
            self.full.load(Ordering::Acquire),
        );
        NativeCell {
            lean: AtomicUsize::new(lean),
            full: AtomicUsize::new(full),
            native: self.native.clone(),
        }
    }
}

impl std::fmt::Debug for NativeCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.native.get() {
            None => "NativeCell(pending)",
            Some(None) => "NativeCell(none)",
            Some(Some(_)) => "NativeCell(code)",
        })
    }
}

/// The host's instruction set, detected once. `None` where Cranelift does not support it.
fn host() -> Option<&'static OwnedTargetIsa> {
    static HOST: OnceLock<Option<OwnedTargetIsa>> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").ok()?;
        flags.set("is_pic", "false").ok()?;
        flags.set("enable_verifier", "false").ok()?;
        flags.set("use_colocated_libcalls", "false").ok()?;
        // The code never unwinds (its one helper cannot panic), so no unwind tables are
        // registered; frame pointers stay, so profilers still walk through it.
        flags.set("unwind_info", "false").ok()?;
        cranelift_native::builder()
            .ok()?
            .finish(settings::Flags::new(flags))
            .ok()
    })
    .as_ref()
}
