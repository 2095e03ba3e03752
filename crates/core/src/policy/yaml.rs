//! Where things are in the YAML text.
//!
//! serde gives us typed values but no positions. This module parses the same text once more
//! with saphyr's span-reporting event parser into a light located tree, so every diagnostic
//! can point at the exact key or value, and a position inside a condition string can be
//! mapped to the line and column of the file.
//!
//! The same pass bounds nesting: mappings and sequences may nest at most [`MAX_NESTING`]
//! levels deep, counted as if aliases were expanded. It runs before serde_yaml sees the text,
//! because libyaml's scanner (under serde_yaml) does work proportional to the open flow
//! collections for every token, so deeply nested brackets would make loading quadratic, and
//! because serde_yaml recurses once per level up to its own limit of 128.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::diag::{Diagnostic, Source};

/// A byte range in the file.
pub type Range = std::ops::Range<usize>;

/// The deepest nesting of mappings and sequences accepted, counted with aliases expanded
/// (the top-level mapping is level 1).
pub const MAX_NESTING: usize = 64;

/// Maps with more entries than this get a key index, so that looking up a key stays cheap
/// however many keys a mapping has.
const INDEX_FROM: usize = 16;

/// A located YAML node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Byte range of the node in the file (for quoted scalars, including the quotes).
    pub range: Range,
    /// Its content.
    pub kind: NodeKind,
    /// For a large mapping: each scalar key's first entry. Boxed, so that the many nodes
    /// without one grow by a pointer rather than by a whole map.
    #[allow(clippy::box_collection)]
    keys: Option<Box<HashMap<String, usize>>>,
}

/// The kinds of node.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A scalar and how it was written.
    Scalar(String, ScalarStyle),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Node, Node)>),
    /// An alias (`*name`); not followed.
    Alias,
}

/// One step of a path into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

impl Node {
    fn new(range: Range, kind: NodeKind) -> Node {
        Node {
            range,
            kind,
            keys: None,
        }
    }

    /// The node at `path`, if there is one.
    pub fn get(&self, path: &[Seg]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (&node.kind, seg) {
                (NodeKind::Map(_), Seg::Key(k)) => &node.entry(k)?.1,
                (NodeKind::Seq(items), Seg::Index(i)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The key node of the entry at `path` (whose last step must be a key).
    pub fn key_at(&self, path: &[Seg]) -> Option<&Node> {
        let (last, parent) = path.split_last()?;
        let Seg::Key(k) = last else { return None };
        self.get(parent)?.entry(k).map(|(key, _)| key)
    }

    /// The first entry of this mapping whose key is `k`.
    fn entry(&self, k: &str) -> Option<&(Node, Node)> {
        let NodeKind::Map(entries) = &self.kind else {
            return None;
        };
        match &self.keys {
            Some(keys) => keys.get(k).map(|&i| &entries[i]),
            None => entries.iter().find(|(key, _)| key.scalar() == Some(k)),
        }
    }

    /// The scalar text, if this is a scalar.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }
}

/// Why [`parse`] gave no tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// saphyr rejects the text, or it holds no document. serde_yaml's error for the same
    /// text is the one reported.
    Syntax,
    /// Mappings and sequences nest deeper than [`MAX_NESTING`]: `at` is the collection (or
    /// the alias) that passes the bound.
    TooDeep {
        /// Where the bound is passed: the first character of that collection or alias.
        at: Range,
        /// Whether it is an alias that would pass the bound once expanded.
        alias: bool,
    },
}

impl ParseError {
    /// The diagnostic for nesting past the bound (none for a syntax error, which serde_yaml
    /// reports).
    pub fn diagnostic(&self) -> Option<Diagnostic> {
        let ParseError::TooDeep { at, alias } = self else {
            return None;
        };
        let label = if *alias {
            format!("this alias expands past level {MAX_NESTING}")
        } else {
            format!("level {}", MAX_NESTING + 1)
        };
        Some(
            Diagnostic::error(
                "too-deep",
                format!("mappings and sequences nest more than {MAX_NESTING} levels deep"),
            )
            .help(format!(
                "the limit is {MAX_NESTING} levels; flatten the structure, or write deeply nested text (such as an `x-` note) as a quoted string"
            ))
            .at(at.clone(), label),
        )
    }
}

/// [`parse`] for a loader: the located tree, or `None` when the text has none (an empty
/// file); `Err` with the diagnostic when it cannot be read at all (too deep, malformed),
/// which ends loading there.
pub fn parse_for_loading(text: &str) -> Result<Option<Node>, Box<Diagnostic>> {
    match parse(text) {
        Ok(tree) => Ok(Some(tree)),
        Err(e) => match e.diagnostic() {
            Some(d) => Err(Box::new(d)),
            None => Ok(None),
        },
    }
}

/// Parses `text` into a located tree, refusing nesting deeper than [`MAX_NESTING`].
///
/// Linear in the length of the text: saphyr's scanner does work proportional to the open
/// flow collections for every token, and the walk stops at the first collection past the
/// bound (saphyr itself stops at 256 open flow collections).
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let bytes = CharToByte::new(text);
    match build(text, &bytes) {
        Ok(node) => Ok(node),
        Err(Failure::TooDeep { at, alias }) => Err(ParseError::TooDeep { at, alias }),
        // saphyr's scanner reads a whole flow collection ahead before the parser hands out
        // its first event, so a structure nested past saphyr's own limit of 256 open flow
        // collections fails before the event at level 65 is seen. Walking the text up to the
        // error again finds it: the lookahead then stops at the end of that shorter text.
        Err(Failure::Syntax(at)) => match build(&text[..bytes.get(at)], &bytes) {
            Err(Failure::TooDeep { at, alias }) => Err(ParseError::TooDeep { at, alias }),
            // Past saphyr's error libyaml may read on (it accepts a tab after `:`, which
            // saphyr does not), so the rest is bounded too, by counting brackets.
            _ => match brackets_past_the_bound(text) {
                Some(at) => Err(ParseError::TooDeep {
                    at: at..at + 1,
                    alias: false,
                }),
                None => Err(ParseError::Syntax),
            },
        },
        Err(Failure::Empty) => Err(ParseError::Syntax),
    }
}

/// The first flow bracket nested more than [`MAX_NESTING`] deep by a count that never
/// falls below the flow nesting a YAML scanner sees: every `[` and `{` outside quoted
/// scalars and comments opens a level (inside a plain or block scalar that over-counts),
/// and every `]` and `}` closes one, down to zero (inside a flow collection each one does
/// close, since plain scalars there end at brackets). Used only for text saphyr rejects.
fn brackets_past_the_bound(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let token_start = i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\r' | b'\n');
        match bytes[i] {
            b'#' if token_start => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            quote @ (b'"' | b'\'') if token_start || matches!(bytes[i - 1], b'[' | b'{' | b',') => {
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if quote == b'"' => i += 1,
                        b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 1,
                        c if c == quote => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Why [`build`] stopped.
enum Failure {
    /// saphyr's error, at this character index.
    Syntax(usize),
    /// Past [`MAX_NESTING`].
    TooDeep { at: Range, alias: bool },
    /// No document.
    Empty,
}

/// A collection being built, with the height of its deepest child so far.
struct Open {
    node: Node,
    pending_key: Option<Node>,
    anchor: usize,
    height: usize,
}

/// The located tree of `text`, whose character indices `bytes` converts (`text` may be a
/// prefix of the text `bytes` was made from).
fn build(text: &str, bytes: &CharToByte) -> Result<Node, Failure> {
    let mut stack: Vec<Open> = Vec::new();
    // Height of each anchored node (a scalar is 0, a collection 1 + its deepest child), by
    // anchor id; `usize::MAX` while the anchored collection is still open, since an alias
    // inside it would expand without end.
    let mut heights: Vec<usize> = Vec::new();
    let mut root = None;
    let too_deep = |at: usize, alias: bool| Failure::TooDeep {
        at: bytes.get(at)..bytes.get(at + 1),
        alias,
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| Failure::Syntax(e.marker().index()))?;
        let range = bytes.get(span.start.index())..bytes.get(span.end.index());
        let (node, anchor, height) = match event {
            Event::Scalar(value, style, anchor, ..) => (
                Node::new(range, NodeKind::Scalar(value.into_owned(), style)),
                anchor,
                0,
            ),
            Event::Alias(id) => {
                let height = heights.get(id).copied().unwrap_or(0);
                if stack.len().saturating_add(height) > MAX_NESTING {
                    return Err(too_deep(span.start.index(), true));
                }
                (Node::new(range, NodeKind::Alias), 0, height)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_NESTING {
                    return Err(too_deep(span.start.index(), false));
                }
                let kind = match event {
                    Event::SequenceStart(..) => NodeKind::Seq(Vec::new()),
                    _ => NodeKind::Map(Vec::new()),
                };
                set_height(&mut heights, anchor, usize::MAX);
                stack.push(Open {
                    node: Node::new(range, kind),
                    pending_key: None,
                    anchor,
                    height: 1,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(Open {
                    mut node,
                    anchor,
                    height,
                    ..
                }) = stack.pop()
                else {
                    return Err(Failure::Syntax(span.start.index()));
                };
                node.range.end = node.range.end.max(range.end);
                index_keys(&mut node);
                (node, anchor, height)
            }
            _ => continue,
        };
        set_height(&mut heights, anchor, height);
        match stack.last_mut() {
            None => {
                if root.is_none() {
                    root = Some(node);
                }
            }
            Some(parent) => {
                parent.height = parent.height.max(height.saturating_add(1));
                parent.node.range.end = parent.node.range.end.max(node.range.end);
                match &mut parent.node.kind {
                    NodeKind::Seq(items) => items.push(node),
                    NodeKind::Map(entries) => match parent.pending_key.take() {
                        None => parent.pending_key = Some(node),
                        Some(key) => entries.push((key, node)),
                    },
                    _ => {}
                }
            }
        }
    }
    root.ok_or(Failure::Empty)
}

fn set_height(heights: &mut Vec<usize>, anchor: usize, height: usize) {
    if anchor == 0 {
        return;
    }
    if heights.len() <= anchor {
        heights.resize(anchor + 1, 0);
    }
    heights[anchor] = height;
}

/// Gives a large mapping its key index.
fn index_keys(node: &mut Node) {
    let NodeKind::Map(entries) = &node.kind else {
        return;
    };
    if entries.len() <= INDEX_FROM {
        return;
    }
    let mut keys = HashMap::with_capacity(entries.len());
    for (i, (key, _)) in entries.iter().enumerate() {
        if let Some(k) = key.scalar() {
            keys.entry(k.to_string()).or_insert(i);
        }
    }
    node.keys = Some(Box::new(keys));
}

/// Converts saphyr's character indices to byte offsets.
struct CharToByte {
    offsets: Vec<usize>,
    len: usize,
}

impl CharToByte {
    fn new(text: &str) -> CharToByte {
        CharToByte {
            offsets: text.char_indices().map(|(i, _)| i).collect(),
            len: text.len(),
        }
    }

    fn get(&self, char_index: usize) -> usize {
        self.offsets.get(char_index).copied().unwrap_or(self.len)
    }
}

/// Maps byte offsets in a scalar's decoded value back to byte offsets in the file.
///
/// The decoded characters are aligned with the raw text greedily: each decoded character is
/// matched with its next occurrence in the raw text within a short window. Quotes, escapes
/// and folded line breaks are skipped over that way. A character with no match (such as the
/// tab that `\t` decodes to) maps to the current raw position, so the mapping is always
/// monotonic and always inside the scalar.
pub struct OffsetMap {
    /// File offset of each decoded byte, plus one entry for the end.
    table: Vec<usize>,
}

impl OffsetMap {
    /// Builds the map for `node`, whose decoded value is `value`.
    pub fn new(file: &str, node: &Node, value: &str) -> OffsetMap {
        let raw = file.get(node.range.clone()).unwrap_or("");
        let raw_chars: Vec<(usize, char)> = raw.char_indices().collect();
        let mut table = Vec::with_capacity(value.len() + 1);
        let mut pos = 0usize;
        for (n, c) in value.chars().enumerate() {
            let window = if n == 0 { 256 } else { 8 };
            let found = raw_chars[pos.min(raw_chars.len())..]
                .iter()
                .take(window)
                .position(|(_, rc)| *rc == c);
            let at = match found {
                Some(skip) => {
                    pos += skip;
                    let at = raw_chars.get(pos).map_or(raw.len(), |(i, _)| *i);
                    pos += 1;
                    at
                }
                None => raw_chars.get(pos).map_or(raw.len(), |(i, _)| *i),
            };
            for _ in 0..c.len_utf8() {
                table.push(node.range.start + at);
            }
        }
        let end = raw_chars.get(pos).map_or(raw.len(), |(i, _)| *i);
        table.push(node.range.start + end);
        OffsetMap { table }
    }

    /// The file range of a byte range within the decoded value. Always on character
    /// boundaries of `file`.
    pub fn range(&self, file: &str, start: usize, end: usize) -> Range {
        let last = self.table.len().saturating_sub(1);
        let at = |i: usize| self.table.get(i.min(last)).copied().unwrap_or(0);
        let s = at(start);
        if end <= start {
            return s..s;
        }
        let mut e = at(end - 1).max(s) + 1;
        while e < file.len() && !file.is_char_boundary(e) {
            e += 1;
        }
        s..e.min(file.len())
    }
}

/// The mapping that holds `path`'s last key, as a shape: its keys, with `#` for every index
/// (`["backends", "veo"]`), for matching against the serde types that a loader knows.
pub fn parent_shape(path: &[Seg]) -> Vec<&str> {
    path[..path.len().saturating_sub(1)]
        .iter()
        .map(|s| match s {
            Seg::Key(k) => k.as_str(),
            Seg::Index(_) => "#",
        })
        .collect()
}

/// An error for every key that repeats an earlier key of the same mapping, anywhere in the
/// tree (the nesting is bounded by [`MAX_NESTING`]). serde_yaml keeps the last of two equal
/// keys of a map, so a repeated backend or key id would otherwise replace the first silently.
pub fn duplicate_keys(node: &Node, diags: &mut Vec<Diagnostic>, source: &Source) {
    match &node.kind {
        NodeKind::Map(entries) => {
            let mut seen: HashMap<&str, &Node> = HashMap::with_capacity(entries.len());
            for (k, v) in entries {
                if let Some(name) = k.scalar() {
                    if let Some(first) = seen.insert(name, k) {
                        let line = source.line_col(first.range.start).0;
                        diags.push(
                            Diagnostic::error("duplicate-key", format!("duplicate key `{name}`"))
                                .at(k.range.clone(), "used before")
                                .help(format!(
                                    "the first `{name}` is at line {line}; each key may appear once in a mapping (YAML readers keep the last, silently replacing the first)"
                                )),
                        );
                    }
                }
                duplicate_keys(v, diags, source);
            }
        }
        NodeKind::Seq(items) => items.iter().for_each(|i| duplicate_keys(i, diags, source)),
        NodeKind::Scalar(..) | NodeKind::Alias => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "a:\n  b: \"x == \\\"y\\\"\"\n  c: [1, 2]\nd: 'it''s'\n";

    #[test]
    fn finds_nodes_and_keys() {
        let root = parse(DOC).unwrap();
        let b = root
            .get(&[Seg::Key("a".into()), Seg::Key("b".into())])
            .unwrap();
        assert_eq!(b.scalar(), Some("x == \"y\""));
        assert_eq!(&DOC[b.range.clone()], "\"x == \\\"y\\\"\"");
        let key = root
            .key_at(&[Seg::Key("a".into()), Seg::Key("c".into())])
            .unwrap();
        assert_eq!(&DOC[key.range.clone()], "c");
        let two = root
            .get(&[Seg::Key("a".into()), Seg::Key("c".into()), Seg::Index(1)])
            .unwrap();
        assert_eq!(two.scalar(), Some("2"));
    }

    #[test]
    fn maps_offsets_through_escapes() {
        let root = parse(DOC).unwrap();
        let b = root
            .get(&[Seg::Key("a".into()), Seg::Key("b".into())])
            .unwrap();
        let value = b.scalar().unwrap();
        let map = OffsetMap::new(DOC, b, value);
        let y = value.find('y').unwrap();
        assert_eq!(&DOC[map.range(DOC, y, y + 1)], "y");
        let d = root.get(&[Seg::Key("d".into())]).unwrap();
        let map = OffsetMap::new(DOC, d, d.scalar().unwrap());
        assert_eq!(&DOC[map.range(DOC, 3, 4)], "s");
    }

    /// `x: ` followed by `depth - 1` nested flow sequences: `depth` levels in all.
    fn flow(depth: usize) -> String {
        format!("x: {}{}\n", "[".repeat(depth - 1), "]".repeat(depth - 1))
    }

    fn too_deep_at(text: &str) -> (usize, bool) {
        match parse(text) {
            Err(ParseError::TooDeep { at, alias }) => (at.start, alias),
            other => panic!("expected too deep, got {other:?}"),
        }
    }

    #[test]
    fn nesting_up_to_the_bound_parses() {
        assert!(parse(&flow(MAX_NESTING)).is_ok());
        let block: String = (0..MAX_NESTING)
            .map(|i| format!("{}k:\n", "  ".repeat(i)))
            .collect();
        assert!(parse(&block).is_ok());
    }

    #[test]
    fn nesting_past_the_bound_is_refused_at_the_collection_that_passes_it() {
        // The 65th level is the 64th bracket, at byte 3 + 63.
        assert_eq!(too_deep_at(&flow(MAX_NESTING + 1)), (66, false));
        let block: String = (0..=MAX_NESTING)
            .map(|i| format!("{}k:\n", "  ".repeat(i)))
            .collect();
        let last_line = block.len() - (2 * MAX_NESTING + 3);
        assert_eq!(too_deep_at(&block), (last_line + 2 * MAX_NESTING, false));
    }

    #[test]
    fn nesting_past_saphyrs_own_limit_is_located_at_the_bound() {
        // saphyr gives up at 256 open flow collections before handing out the events of the
        // first; the bound is still reported where it is passed.
        for depth in [300, 100_000] {
            assert_eq!(too_deep_at(&flow(depth)), (66, false), "depth {depth}");
        }
        let unclosed = format!("x: {}", "[".repeat(1000));
        assert_eq!(too_deep_at(&unclosed), (66, false));
    }

    #[test]
    fn aliases_count_as_expanded() {
        let inner = |d: usize| format!("{}1{}", "[".repeat(d), "]".repeat(d));
        // `a` holds 32 levels; used at level 33 it reaches 64, at level 34 it passes.
        let fits = format!(
            "a: &a {}\nb: {}*a{}\n",
            inner(32),
            "[".repeat(31),
            "]".repeat(31)
        );
        assert!(parse(&fits).is_ok());
        let deeper = format!(
            "a: &a {}\nb: {}*a{}\n",
            inner(32),
            "[".repeat(32),
            "]".repeat(32)
        );
        let at = deeper.find('*').unwrap();
        assert_eq!(too_deep_at(&deeper), (at, true));
        // An alias inside its own anchor would expand without end.
        let own = "a: &a [1, *a]\n";
        assert_eq!(too_deep_at(own), (own.find('*').unwrap(), true));
    }

    #[test]
    fn large_mappings_find_keys_by_index() {
        let text: String = (0..1000).map(|i| format!("k{i}: {i}\n")).collect();
        let text = format!("{text}k7: again\n");
        let root = parse(&text).unwrap();
        for i in [0, 7, 999] {
            let v = root.get(&[Seg::Key(format!("k{i}"))]).unwrap();
            assert_eq!(v.scalar(), Some(i.to_string().as_str()), "first entry wins");
        }
        assert!(root.get(&[Seg::Key("k1000".into())]).is_none());
    }

    #[test]
    fn nesting_past_the_bound_after_a_line_saphyr_rejects_is_still_refused() {
        // libyaml reads on past a tab after `:`; saphyr stops there.
        let text = format!("a:\t1\nb: '[' # [\n{}", flow(MAX_NESTING + 10));
        // Counting flow brackets only, the 65th is the first past the bound.
        let at = text.find("x:").unwrap() + 3 + MAX_NESTING;
        assert_eq!(too_deep_at(&text), (at, false));
        // Brackets in quoted scalars and comments do not count.
        let quoted = format!(
            "a:\t1\nb: \"{0}\"\nc: '{0}'\n# {0}\nd: [\"]\", '''', {1}]\n",
            "[".repeat(100),
            "[".repeat(MAX_NESTING - 2) + &"]".repeat(MAX_NESTING - 2)
        );
        assert_eq!(parse(&quoted).unwrap_err(), ParseError::Syntax);
    }

    #[test]
    fn syntax_errors_are_left_to_serde_yaml() {
        assert_eq!(parse("a: [1, 2\nb: 3\n").unwrap_err(), ParseError::Syntax);
        assert_eq!(parse("").unwrap_err(), ParseError::Syntax);
    }
}
