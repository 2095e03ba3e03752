//! The compiler proper: a condition [`Node`] tree into Cranelift IR, as jumping code that
//! ends in one of three returns (true, false, defer).
//!
//! Why apart from the module plumbing in `jit/mod.rs`: this is where the language's semantics
//! meet the machine (what each node compiles to, which fast paths are taken and when the code
//! steps aside for the interpreter), and it is the part a change to the language touches;
//! owning memory and calling the code does not depend on any of it.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, Block, InstBuilder, MemFlagsData, SigRef, StackSlotData, StackSlotKind, Type,
    Value,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Module};

use super::abi::{
    self, measured_code, num_offset, read_field, read_measured, BOOL, ENUM, NUM, STR,
};
use super::{DEFER, FALSE, TRUE};
use crate::eval::program::{Node, NumNode};
use crate::expr::{Arith, Cmp, Slot};
use crate::num::SCALE;

/// Literals longer than this are compared by the interpreter (the comparison is unrolled).
const MAX_LITERAL: usize = 256;

/// Whether the code needs the style or the breakers (the [`super::Full`] signature).
pub(super) fn reads_references(n: &Node) -> bool {
    match n {
        Node::Str { slot, .. } | Node::Enum { slot, .. } => {
            matches!(slot, Slot::Style | Slot::Breaker(_))
        }
        Node::Not(a) => reads_references(a),
        Node::All(items) | Node::Any(items) => items.iter().any(reads_references),
        _ => false,
    }
}

/// Whether a slot is one the generated code does not read (the video being judged, read
/// only by `execution.quality_retry.when`): such conditions run in the interpreter.
/// Measured figures are read through [`read_measured`].
fn live(slot: Slot) -> bool {
    matches!(slot, Slot::Video(_))
}

/// Whether the generator has code for every node.
pub(super) fn covered(n: &Node) -> bool {
    match n {
        Node::Enum { slot, .. } | Node::Flag(slot) | Node::NumK { slot, .. } => !live(*slot),
        Node::Const(_) => true,
        Node::Str { values, slot } => !live(*slot) && values.iter().all(|v| v.len() <= MAX_LITERAL),
        Node::Num { a, b, .. } => covered_num(a) && covered_num(b),
        Node::Not(a) => covered(a),
        Node::All(items) | Node::Any(items) => items.iter().all(covered),
        Node::Tree(_) => false,
    }
}

fn covered_num(n: &NumNode) -> bool {
    match n {
        NumNode::K(_) => true,
        NumNode::Slot(slot) => !live(*slot),
        NumNode::Neg(a) => covered_num(a),
        NumNode::Arith(_, a, b) => covered_num(a) && covered_num(b),
        NumNode::Tree(_) => false,
    }
}

/// Defines one function in `module` (finalized later, with the others).
pub(super) fn define(
    module: &mut JITModule,
    fctx: &mut FunctionBuilderContext,
    root: &Node,
    full: bool,
) -> Option<FuncId> {
    let ptr_ty = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    let arity = if full { 5 } else { 1 };
    sig.params
        .extend(std::iter::repeat_n(AbiParam::new(ptr_ty), arity));
    sig.returns.push(AbiParam::new(types::I32));
    let id = module.declare_anonymous_function(&sig).ok()?;
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let mut params = b.block_params(entry).to_vec();
        // A lean function never reads these; zeros keep the emitter uniform.
        while params.len() < 5 {
            params.push(b.ins().iconst(ptr_ty, 0));
        }
        let mut field_sig = module.make_signature();
        field_sig.params.extend([
            AbiParam::new(ptr_ty),
            AbiParam::new(types::I64),
            AbiParam::new(ptr_ty),
        ]);
        field_sig.returns.push(AbiParam::new(types::I32));
        let field_sig = b.import_signature(field_sig);
        let [on_true, on_false, defer] = [b.create_block(), b.create_block(), b.create_block()];
        let mut e = Emitter {
            b,
            ptr_ty,
            ctx: params[0],
            style: params[1],
            style_len: params[2],
            breakers: params[3],
            breakers_len: params[4],
            defer,
            field_sig,
        };
        e.test(root, on_true, on_false);
        for (block, answer) in [(on_true, TRUE), (on_false, FALSE), (defer, DEFER)] {
            e.b.switch_to_block(block);
            let v = e.b.ins().iconst(types::I32, i64::from(answer));
            e.b.ins().return_(&[v]);
        }
        e.b.seal_all_blocks();
        e.b.finalize(module.target_config());
    }
    module.define_function(id, &mut ctx).ok()?;
    Some(id)
}

/// `p / q op k` for a comparison of a quotient with a constant, either way round.
fn quotient_vs_constant<'n>(
    op: Cmp,
    a: &'n NumNode,
    b: &'n NumNode,
) -> Option<(Cmp, &'n NumNode, &'n NumNode, i64)> {
    match (a, b) {
        (NumNode::Arith(Arith::Div, p, q), NumNode::K(k)) => Some((op, p, q, k.micros())),
        (NumNode::K(k), NumNode::Arith(Arith::Div, p, q)) => Some((op.flipped(), p, q, k.micros())),
        _ => None,
    }
}

fn int_cc(op: Cmp) -> IntCC {
    match op {
        Cmp::Eq => IntCC::Equal,
        Cmp::Ne => IntCC::NotEqual,
        Cmp::Lt => IntCC::SignedLessThan,
        Cmp::Le => IntCC::SignedLessThanOrEqual,
        Cmp::Gt => IntCC::SignedGreaterThan,
        Cmp::Ge => IntCC::SignedGreaterThanOrEqual,
    }
}

/// Emits a program as jumping code: each test ends its block with a branch to `on_true` or
/// `on_false`, and anything unusual branches to `defer`.
struct Emitter<'a> {
    b: FunctionBuilder<'a>,
    ptr_ty: Type,
    ctx: Value,
    style: Value,
    style_len: Value,
    breakers: Value,
    breakers_len: Value,
    defer: Block,
    field_sig: SigRef,
}

impl Emitter<'_> {
    fn test(&mut self, n: &Node, on_true: Block, on_false: Block) {
        match n {
            Node::Const(b) => {
                self.b.ins().jump(if *b { on_true } else { on_false }, &[]);
            }
            // One value in or out (`==`, `!=`): a single compare.
            Node::Enum { slot, set, beyond } if set.count_ones() == 1 && !beyond => {
                let i = self.read_enum(*slot);
                let k = i64::from(set.trailing_zeros());
                let hit = self.b.ins().icmp_imm_u(IntCC::Equal, i, k);
                self.b.ins().brif(hit, on_true, &[], on_false, &[]);
            }
            Node::Enum { slot, set, beyond } if set.count_zeros() == 1 && *beyond => {
                let i = self.read_enum(*slot);
                let k = i64::from(set.trailing_ones());
                let miss = self.b.ins().icmp_imm_u(IntCC::Equal, i, k);
                self.b.ins().brif(miss, on_false, &[], on_true, &[]);
            }
            Node::Enum { slot, set, beyond } => {
                let i = self.read_enum(*slot);
                let in_range = self.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, i, 64);
                let set = self.b.ins().iconst(types::I64, *set as i64);
                let shifted = self.b.ins().ushr(set, i);
                let bit = self.b.ins().band_imm_u(shifted, 1);
                let beyond = self.b.ins().iconst(types::I64, i64::from(*beyond));
                let hit = self.b.ins().select(in_range, bit, beyond);
                self.b.ins().brif(hit, on_true, &[], on_false, &[]);
            }
            Node::Str { slot, values } => {
                let (text, len) = self.read_str(*slot);
                for v in values.iter() {
                    let next = self.b.create_block();
                    self.text_equals(text, len, v.as_bytes(), on_true, next);
                    self.b.switch_to_block(next);
                }
                self.b.ins().jump(on_false, &[]);
            }
            // `spend + cost <= budget`, where an overflowing sum does not fit; with budget
            // levels, the interpreter answers.
            Node::Flag(Slot::CostFits(_, cost)) => {
                let capped = self.b.ins().uload8(
                    types::I64,
                    MemFlagsData::trusted(),
                    self.ctx,
                    abi::CAPPED as i32,
                );
                let plain = self.b.ins().icmp_imm_u(IntCC::Equal, capped, 0);
                self.defer_unless(plain);
                let spend = self.load_i64(abi::SPEND);
                let budget = self.load_i64(abi::BUDGET);
                let cost = self.b.ins().iconst(types::I64, cost.micros());
                let (total, overflow) = self.b.ins().sadd_overflow(spend, cost);
                let sum = self.b.create_block();
                self.b.ins().brif(overflow, on_false, &[], sum, &[]);
                self.b.switch_to_block(sum);
                let fits = self
                    .b
                    .ins()
                    .icmp(IntCC::SignedLessThanOrEqual, total, budget);
                self.b.ins().brif(fits, on_true, &[], on_false, &[]);
            }
            Node::Flag(slot) => {
                let v = self.read_flag(*slot);
                self.b.ins().brif(v, on_true, &[], on_false, &[]);
            }
            Node::NumK { slot, op, k } => {
                let x = self.read_num(*slot);
                let c = self.b.ins().icmp_imm_s(int_cc(*op), x, k.micros());
                self.b.ins().brif(c, on_true, &[], on_false, &[]);
            }
            Node::Num { op, a, b } => {
                if let Some((op, p, q, k)) = quotient_vs_constant(*op, a, b) {
                    return self.quotient_test(op, p, q, k, on_true, on_false);
                }
                let (x, y) = (self.num(a), self.num(b));
                let c = self.b.ins().icmp(int_cc(*op), x, y);
                self.b.ins().brif(c, on_true, &[], on_false, &[]);
            }
            Node::Not(a) => self.test(a, on_false, on_true),
            Node::All(items) => self.junction(items, on_true, on_false, false),
            Node::Any(items) => self.junction(items, on_true, on_false, true),
            // `covered` keeps these out.
            Node::Tree(_) => {
                self.b.ins().jump(self.defer, &[]);
            }
        }
    }

    /// `p / q op k` without a division where it can. With `X = p·SCALE ≥ 0` and `q > 0` the
    /// quotient is `floor(X / q)`, and for an integer `k`, `floor(X / q) < k` exactly when
    /// `X < k·q`; so each comparison is one product (two for `==` and `!=`) and a compare.
    /// Why: a 64-bit division costs more than the rest of such a condition together, and
    /// `spend / budget < 0.8` is the usual shape. A negative operand or a product past 64 bits
    /// takes the division, [`Emitter::arith`]'s, as any other quotient does.
    fn quotient_test(
        &mut self,
        op: Cmp,
        p: &NumNode,
        q: &NumNode,
        k: i64,
        on_true: Block,
        on_false: Block,
    ) {
        let (x, y) = (self.num(p), self.num(q));
        // Every comparison is `lo·y <= X < hi·y` (no `lo` but for `==`) or its negation:
        // `q < k` is `X < k·y`, `q <= k` is `q < k + 1`.
        let (lo, hi) = match op {
            Cmp::Lt | Cmp::Ge => (None, Some(k)),
            Cmp::Le | Cmp::Gt => (None, k.checked_add(1)),
            Cmp::Eq | Cmp::Ne => (Some(k), k.checked_add(1)),
        };
        let (yes, no) = match op {
            Cmp::Lt | Cmp::Le | Cmp::Eq => (on_true, on_false),
            Cmp::Ge | Cmp::Gt | Cmp::Ne => (on_false, on_true),
        };
        let slow = self.b.create_block();
        match hi {
            Some(hi) => {
                let widest = lo.map_or(0, i64::unsigned_abs).max(hi.unsigned_abs());
                self.quotient_in_range(x, y, (lo, hi, widest), (yes, no), slow);
            }
            // `k + 1` overflows: only the division can say.
            None => {
                self.b.ins().jump(slow, &[]);
            }
        }
        self.b.switch_to_block(slow);
        let quotient = self.arith(Arith::Div, x, y);
        let c = self.b.ins().icmp_imm_s(int_cc(op), quotient, k);
        self.b.ins().brif(c, on_true, &[], on_false, &[]);
    }

    /// The fast path of [`Emitter::quotient_test`]: branches to `yes` when
    /// `lo·y <= x·SCALE < hi·y`, else to `no`, or to `slow` when an operand is out of range.
    /// Range checks instead of overflow checks: `0 <= x <= MAX / SCALE` makes `X` fit and be
    /// non-negative, `1 <= y <= MAX / widest` makes each product fit and `y` positive; each
    /// is one unsigned compare fused with its branch.
    fn quotient_in_range(
        &mut self,
        x: Value,
        y: Value,
        (lo, hi, widest): (Option<i64>, i64, u64),
        (yes, no): (Block, Block),
        slow: Block,
    ) {
        let x_fits = self
            .b
            .ins()
            .icmp_imm_u(IntCC::UnsignedLessThanOrEqual, x, i64::MAX / SCALE);
        let y_block = self.b.create_block();
        self.b.ins().brif(x_fits, y_block, &[], slow, &[]);
        self.b.switch_to_block(y_block);
        let y_limit = (i64::MAX as u64) / widest.max(1);
        let y_less_one = self.b.ins().iadd_imm_s(y, -1);
        let y_fits = self
            .b
            .ins()
            .icmp_imm_u(IntCC::UnsignedLessThan, y_less_one, y_limit as i64);
        let fast = self.b.create_block();
        self.b.ins().brif(y_fits, fast, &[], slow, &[]);
        self.b.switch_to_block(fast);
        let scaled = self.b.ins().imul_imm_s(x, SCALE);
        let mut below = |m: i64| {
            let bound = self.b.ins().imul_imm_s(y, m);
            self.b.ins().icmp(IntCC::SignedLessThan, scaled, bound)
        };
        let mut within = below(hi);
        if let Some(lo) = lo {
            let under = below(lo);
            within = self.b.ins().band_not(within, under);
        }
        self.b.ins().brif(within, yes, &[], no, &[]);
    }

    /// `AND` (`stop` false) or `OR` (`stop` true), short-circuiting in order.
    fn junction(&mut self, items: &[Node], on_true: Block, on_false: Block, stop: bool) {
        let Some((last, init)) = items.split_last() else {
            self.b
                .ins()
                .jump(if stop { on_false } else { on_true }, &[]);
            return;
        };
        for item in init {
            let next = self.b.create_block();
            if stop {
                self.test(item, on_true, next);
            } else {
                self.test(item, next, on_false);
            }
            self.b.switch_to_block(next);
        }
        self.test(last, on_true, on_false);
    }

    /// Branches to `on_equal` when the `len` bytes at `text` are `lit`, else to `on_other`.
    fn text_equals(
        &mut self,
        text: Value,
        len: Value,
        lit: &[u8],
        on_equal: Block,
        on_other: Block,
    ) {
        let same_len = self.b.ins().icmp_imm_u(IntCC::Equal, len, lit.len() as i64);
        let bytes = self.b.create_block();
        self.b.ins().brif(same_len, bytes, &[], on_other, &[]);
        self.b.switch_to_block(bytes);
        let flags = MemFlagsData::new().with_notrap();
        let mut at = 0;
        while at < lit.len() {
            let width = [8, 4, 2, 1]
                .into_iter()
                .find(|w| lit.len() - at >= *w)
                .unwrap_or(1);
            let ty = Type::int_with_byte_size(width as u16).unwrap_or(types::I8);
            let mut chunk = [0u8; 8];
            chunk[..width].copy_from_slice(&lit[at..at + width]);
            let want = u64::from_le_bytes(chunk) as i64;
            let got = self.b.ins().load(ty, flags, text, at as i32);
            let want = self.b.ins().iconst(ty, want);
            let same = self.b.ins().icmp(IntCC::Equal, got, want);
            let more = self.b.create_block();
            self.b.ins().brif(same, more, &[], on_other, &[]);
            self.b.switch_to_block(more);
            at += width;
        }
        self.b.ins().jump(on_equal, &[]);
    }

    /// Continues in a new block when `ok` is nonzero, else defers.
    fn defer_unless(&mut self, ok: Value) {
        let next = self.b.create_block();
        self.b.ins().brif(ok, next, &[], self.defer, &[]);
        self.b.switch_to_block(next);
    }

    /// Defers unconditionally; returns a placeholder value in a new, unreachable block.
    fn defer_always(&mut self, ty: Type) -> Value {
        self.b.ins().jump(self.defer, &[]);
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
        self.b.ins().iconst(ty, 0)
    }

    fn load_i64(&mut self, offset: usize) -> Value {
        self.b
            .ins()
            .load(types::I64, MemFlagsData::trusted(), self.ctx, offset as i32)
    }

    /// Calls [`read_field`]; defers unless the tag is `want`. Returns the two words.
    fn field(&mut self, index: u16, want: u32) -> (Value, Value) {
        self.helper(read_field as *const (), i64::from(index), want)
    }

    /// Calls a helper of [`read_field`]'s signature with `index`; defers unless the tag is
    /// `want`. Returns the two words.
    fn helper(&mut self, callee: *const (), index: i64, want: u32) -> (Value, Value) {
        let slot =
            self.b
                .create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 16, 3));
        let out = self.b.ins().stack_addr(self.ptr_ty, slot, 0);
        let callee = self.b.ins().iconst(self.ptr_ty, callee as usize as i64);
        let index = self.b.ins().iconst(types::I64, index);
        let call = self
            .b
            .ins()
            .call_indirect(self.field_sig, callee, &[self.ctx, index, out]);
        let tag = self.b.inst_results(call)[0];
        let ok = self.b.ins().icmp_imm_u(IntCC::Equal, tag, i64::from(want));
        self.defer_unless(ok);
        let first = self.b.ins().stack_load(self.ptr_ty, types::I64, slot, 0);
        let second = self.b.ins().stack_load(self.ptr_ty, types::I64, slot, 8);
        (first, second)
    }

    /// An enum slot's index, as an `i64`.
    fn read_enum(&mut self, slot: Slot) -> Value {
        let flags = MemFlagsData::trusted();
        match slot {
            Slot::Priority => {
                self.b
                    .ins()
                    .uload16(types::I64, flags, self.ctx, abi::PRIORITY as i32)
            }
            Slot::AspectRatio => {
                self.b
                    .ins()
                    .uload16(types::I64, flags, self.ctx, abi::ASPECT_RATIO as i32)
            }
            // A backend past the slice reads as closed, as in the interpreter.
            Slot::Breaker(i) => {
                let present = self.b.ins().icmp_imm_u(
                    IntCC::UnsignedGreaterThan,
                    self.breakers_len,
                    i64::from(i),
                );
                let (load, done) = (self.b.create_block(), self.b.create_block());
                let state = self.b.append_block_param(done, types::I64);
                let closed = self.b.ins().iconst(types::I64, 0);
                self.b
                    .ins()
                    .brif(present, load, &[], done, &[closed.into()]);
                self.b.switch_to_block(load);
                let v = self
                    .b
                    .ins()
                    .uload8(types::I64, flags, self.breakers, i32::from(i));
                self.b.ins().jump(done, &[v.into()]);
                self.b.switch_to_block(done);
                state
            }
            Slot::Field(i) => self.field(i, ENUM).0,
            _ => self.defer_always(types::I64),
        }
    }

    /// A text slot's pointer and length.
    fn read_str(&mut self, slot: Slot) -> (Value, Value) {
        match slot {
            Slot::Style => {
                let set = self.b.ins().icmp_imm_u(IntCC::NotEqual, self.style, 0);
                self.defer_unless(set);
                (self.style, self.style_len)
            }
            Slot::Field(i) => self.field(i, STR),
            _ => {
                let v = self.defer_always(self.ptr_ty);
                (v, v)
            }
        }
    }

    /// A boolean slot, as an `i8`.
    fn read_flag(&mut self, slot: Slot) -> Value {
        match slot {
            Slot::BudgetLeft => {
                let spend = self.load_i64(abi::SPEND);
                let budget = self.load_i64(abi::BUDGET);
                self.b.ins().icmp(IntCC::SignedLessThan, spend, budget)
            }
            Slot::Field(i) => {
                let v = self.field(i, BOOL).0;
                self.b.ins().icmp_imm_u(IntCC::NotEqual, v, 0)
            }
            _ => self.defer_always(types::I8),
        }
    }

    /// A numeric slot, in micro-units.
    fn read_num(&mut self, slot: Slot) -> Value {
        if let Some(offset) = num_offset(slot) {
            return self.load_i64(offset);
        }
        match slot {
            Slot::BudgetRemaining => {
                let spend = self.load_i64(abi::SPEND);
                let budget = self.load_i64(abi::BUDGET);
                self.checked(|b| b.ins().ssub_overflow(budget, spend))
            }
            Slot::Static(v) => self.b.ins().iconst(types::I64, v.micros()),
            Slot::Field(i) => self.field(i, NUM).0,
            Slot::Measured(backend, prop) => {
                let index = (i64::from(backend) << 8) | measured_code(prop);
                self.helper(read_measured as *const (), index, NUM).0
            }
            _ => self.defer_always(types::I64),
        }
    }

    /// The value of an overflow-reporting instruction; defers on overflow.
    fn checked(&mut self, op: impl FnOnce(&mut FunctionBuilder<'_>) -> (Value, Value)) -> Value {
        let (v, overflow) = op(&mut self.b);
        let ok = self.b.ins().icmp_imm_u(IntCC::Equal, overflow, 0);
        self.defer_unless(ok);
        v
    }

    /// A numeric operand, in micro-units. The 64-bit fast paths of `Fixed`'s arithmetic;
    /// everything else defers.
    fn num(&mut self, n: &NumNode) -> Value {
        match n {
            NumNode::K(k) => self.b.ins().iconst(types::I64, k.micros()),
            NumNode::Slot(slot) => self.read_num(*slot),
            NumNode::Neg(a) => {
                let x = self.num(a);
                let zero = self.b.ins().iconst(types::I64, 0);
                self.checked(|b| b.ins().ssub_overflow(zero, x))
            }
            NumNode::Arith(op, a, b) => {
                let (x, y) = (self.num(a), self.num(b));
                self.arith(*op, x, y)
            }
            NumNode::Tree(_) => self.defer_always(types::I64),
        }
    }

    fn arith(&mut self, op: Arith, x: Value, y: Value) -> Value {
        match op {
            Arith::Add => self.checked(|b| b.ins().sadd_overflow(x, y)),
            Arith::Sub => self.checked(|b| b.ins().ssub_overflow(x, y)),
            // `x * y / SCALE`, when `x * y` fits in 64 bits.
            Arith::Mul => {
                let product = self.checked(|b| b.ins().smul_overflow(x, y));
                self.b.ins().sdiv_imm_s(product, SCALE)
            }
            // `x * SCALE / y`, when `x * SCALE` fits; a zero or `-1` divisor defers (the
            // latter only so that `i64::MIN / -1` can never trap).
            Arith::Div => {
                let nonzero = self.b.ins().icmp_imm_s(IntCC::NotEqual, y, 0);
                let not_minus_one = self.b.ins().icmp_imm_s(IntCC::NotEqual, y, -1);
                let safe = self.b.ins().band(nonzero, not_minus_one);
                self.defer_unless(safe);
                let scale = self.b.ins().iconst(types::I64, SCALE);
                let scaled = self.checked(|b| b.ins().smul_overflow(x, scale));
                self.b.ins().sdiv(scaled, y)
            }
        }
    }
}
