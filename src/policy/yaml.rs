//! Where things are in the YAML text.
//!
//! serde gives us typed values but no positions. This module parses the same text once more
//! with saphyr's span-reporting event parser into a light located tree, so every diagnostic
//! can point at the exact key or value, and a position inside a condition string can be
//! mapped to the line and column of the file.

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A byte range in the file.
pub type Range = std::ops::Range<usize>;

/// A located YAML node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Byte range of the node in the file (for quoted scalars, including the quotes).
    pub range: Range,
    /// Its content.
    pub kind: NodeKind,
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
    /// The node at `path`, if there is one.
    pub fn get(&self, path: &[Seg]) -> Option<&Node> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        match (&self.kind, first) {
            (NodeKind::Map(entries), Seg::Key(k)) => entries
                .iter()
                .find(|(key, _)| key.scalar() == Some(k))
                .and_then(|(_, v)| v.get(rest)),
            (NodeKind::Seq(items), Seg::Index(i)) => items.get(*i).and_then(|n| n.get(rest)),
            _ => None,
        }
    }

    /// The key node of the entry at `path` (whose last step must be a key).
    pub fn key_at(&self, path: &[Seg]) -> Option<&Node> {
        let (last, parent) = path.split_last()?;
        let Seg::Key(k) = last else { return None };
        match &self.get(parent)?.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(key, _)| key.scalar() == Some(k))
                .map(|(key, _)| key),
            _ => None,
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

/// Parses `text` into a located tree. Returns `None` if saphyr rejects it; serde_yaml's
/// error for the same text is the one reported.
pub fn parse(text: &str) -> Option<Node> {
    let bytes = CharToByte::new(text);
    let mut stack: Vec<(Node, Option<Node>)> = Vec::new();
    let mut root = None;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.ok()?;
        let range = bytes.get(span.start.index())..bytes.get(span.end.index());
        let node = match event {
            Event::Scalar(value, style, ..) => Node {
                range,
                kind: NodeKind::Scalar(value.into_owned(), style),
            },
            Event::Alias(_) => Node {
                range,
                kind: NodeKind::Alias,
            },
            Event::SequenceStart(..) => {
                stack.push((
                    Node {
                        range,
                        kind: NodeKind::Seq(Vec::new()),
                    },
                    None,
                ));
                continue;
            }
            Event::MappingStart(..) => {
                stack.push((
                    Node {
                        range,
                        kind: NodeKind::Map(Vec::new()),
                    },
                    None,
                ));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, _) = stack.pop()?;
                node.range.end = node.range.end.max(range.end);
                node
            }
            _ => continue,
        };
        match stack.last_mut() {
            None => {
                if root.is_none() {
                    root = Some(node);
                }
            }
            Some((parent, pending_key)) => {
                parent.range.end = parent.range.end.max(node.range.end);
                match &mut parent.kind {
                    NodeKind::Seq(items) => items.push(node),
                    NodeKind::Map(entries) => match pending_key.take() {
                        None => *pending_key = Some(node),
                        Some(key) => entries.push((key, node)),
                    },
                    _ => {}
                }
            }
        }
    }
    root
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
}
