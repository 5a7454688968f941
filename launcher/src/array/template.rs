//! The command of a job array with its placeholders.
//!
//! In any argument (not the program name), `{}` stands for the task's input as a whole —
//! the index with `--array`, the whole line with `--array-file` — and `{1}`, `{2}`, … for
//! its whitespace-separated fields (fields that do not exist are empty; with `--array`
//! the index is the only field). A placeholder may appear several times and inside a
//! word (`in/{}.txt`). Anything else, `{x}` or a lone `{`, is left as it is.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use crate::wire::Bytes;

/// A piece of an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    /// `{}`.
    Whole,
    /// `{N}`, counting from 1.
    Field(usize),
}

/// The program's arguments, cut at their placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    args: Vec<Vec<Piece>>,
}

impl Template {
    /// Cuts `args` (the arguments after the program) at their placeholders.
    pub fn new(args: &[OsString]) -> Self {
        Template {
            args: args.iter().map(|a| pieces(a.as_bytes())).collect(),
        }
    }

    /// Whether `word` (the program name) contains a placeholder.
    pub fn has_placeholder(word: &[u8]) -> bool {
        pieces(word).iter().any(|p| !matches!(p, Piece::Text(_)))
    }

    /// The arguments of one task whose input is `whole`.
    pub fn expand(&self, whole: &[u8]) -> Vec<Bytes> {
        let mut fields: Option<Vec<&[u8]>> = None;
        self.args
            .iter()
            .map(|pieces| {
                let mut out = Vec::new();
                for p in pieces {
                    match p {
                        Piece::Text(t) => out.extend_from_slice(t),
                        Piece::Whole => out.extend_from_slice(whole),
                        Piece::Field(n) => {
                            let fields = fields.get_or_insert_with(|| {
                                whole
                                    .split(|b| b.is_ascii_whitespace())
                                    .filter(|f| !f.is_empty())
                                    .collect()
                            });
                            if let Some(f) = fields.get(n - 1) {
                                out.extend_from_slice(f);
                            }
                        }
                    }
                }
                Bytes(out)
            })
            .collect()
    }
}

/// Cuts one word at its placeholders.
fn pieces(word: &[u8]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = Vec::new();
    let mut i = 0;
    while i < word.len() {
        if word[i] == b'{' {
            if let Some(len) = word[i + 1..].iter().position(|&b| b == b'}') {
                let inner = &word[i + 1..i + 1 + len];
                let piece = if inner.is_empty() {
                    Some(Piece::Whole)
                } else if inner.len() <= 9 && inner.iter().all(u8::is_ascii_digit) {
                    std::str::from_utf8(inner)
                        .ok()
                        .and_then(|s| s.parse::<usize>().ok())
                        .filter(|&n| n >= 1)
                        .map(Piece::Field)
                } else {
                    None
                };
                if let Some(piece) = piece {
                    if !text.is_empty() {
                        out.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    out.push(piece);
                    i += len + 2;
                    continue;
                }
            }
        }
        text.push(word[i]);
        i += 1;
    }
    if !text.is_empty() || out.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: &[&str], whole: &str) -> Vec<String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        Template::new(&args)
            .expand(whole.as_bytes())
            .into_iter()
            .map(|b| String::from_utf8(b.0).unwrap())
            .collect()
    }

    #[test]
    fn whole_and_fields_anywhere_and_repeatedly() {
        assert_eq!(
            expand(&["check_prime.py", "{}", "x{}y{}", ""], "17"),
            ["check_prime.py", "17", "x17y17", ""]
        );
        assert_eq!(
            expand(&["{2}-{1}", "{3}", "{}", "{1}{1}"], "  a\tb   c d "),
            ["b-a", "c", "  a\tb   c d ", "aa"]
        );
        assert_eq!(
            expand(&["[{4}]"], "a b"),
            ["[]"],
            "missing fields are empty"
        );
    }

    #[test]
    fn other_braces_stay() {
        assert_eq!(
            expand(&["{x}", "{", "}", "{0}", "a{}{", "{{}}", "{-1}"], "7"),
            ["{x}", "{", "}", "{0}", "a7{", "{7}", "{-1}"]
        );
    }

    #[test]
    fn placeholders_in_the_program_are_found() {
        assert!(Template::has_placeholder(b"./prog{}"));
        assert!(Template::has_placeholder(b"{1}"));
        assert!(!Template::has_placeholder(b"./prog"));
        assert!(!Template::has_placeholder(b"{x}"));
    }
}
