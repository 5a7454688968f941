//! Where a job array's tasks come from: the indices of `--array`, or the lines of
//! `--array-file`, read one at a time (a file of a million lines is never held in memory).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::spec::{IndexSpec, Indices};
use super::ArrayError;

/// Longest line of `--array-file` (a command line could not take more anyway).
pub const MAX_LINE: usize = 1 << 20;

/// One task's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// `PIRUN_ARRAY_INDEX`: the index, or the line number (from 1).
    pub index: u64,
    /// What `{}` stands for: the index in decimal, or the line (without its newline).
    pub text: Vec<u8>,
}

/// The tasks still to come.
#[derive(Debug)]
pub enum Source {
    /// `--array SPEC`.
    Indices(Indices),
    /// `--array-file FILE`.
    File {
        /// The file, for messages.
        path: PathBuf,
        /// Its reader.
        reader: BufReader<File>,
        /// Lines read so far.
        line: u64,
        /// Tasks found so far.
        tasks: u64,
    },
}

impl Source {
    /// The indices of `spec`.
    pub fn indices(spec: &IndexSpec) -> Self {
        Source::Indices(spec.iter())
    }

    /// The lines of `path` (opened now, so a missing file fails before anything starts).
    pub fn file(path: &Path) -> Result<Self, ArrayError> {
        let file = File::open(path).map_err(|source| ArrayError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Source::File {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(64 * 1024, file),
            line: 0,
            tasks: 0,
        })
    }

    /// The next task's input, `None` at the end. Blank lines are skipped (their numbers
    /// are not reused).
    pub fn next_input(&mut self) -> Result<Option<Input>, ArrayError> {
        match self {
            Source::Indices(it) => Ok(it.next().map(|index| Input {
                index,
                text: index.to_string().into_bytes(),
            })),
            Source::File {
                path,
                reader,
                line,
                tasks,
            } => loop {
                let mut text = Vec::new();
                let n = reader
                    .by_ref()
                    .take(MAX_LINE as u64 + 2)
                    .read_until(b'\n', &mut text)
                    .map_err(|source| ArrayError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
                if n == 0 {
                    if *tasks == 0 {
                        return Err(ArrayError::EmptyFile { path: path.clone() });
                    }
                    return Ok(None);
                }
                *line += 1;
                if text.last() == Some(&b'\n') {
                    text.pop();
                    if text.last() == Some(&b'\r') {
                        text.pop();
                    }
                }
                if text.len() > MAX_LINE {
                    return Err(ArrayError::LongLine {
                        path: path.clone(),
                        line: *line,
                    });
                }
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                *tasks += 1;
                return Ok(Some(Input { index: *line, text }));
            },
        }
    }
}

/// How many tasks there are, if that is cheap to know: the count of `--array`, or of
/// the non-blank lines of `--array-file` (one quick pass, for the progress display).
pub fn count(spec: Option<&IndexSpec>, file: Option<&Path>) -> Option<u64> {
    if let Some(spec) = spec {
        return Some(spec.count());
    }
    let mut reader = BufReader::new(File::open(file?).ok()?);
    let mut n = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader
            .by_ref()
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => return Some(n),
            Ok(_) => {
                if !line.iter().all(u8::is_ascii_whitespace) {
                    n += 1;
                }
            }
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_and_blank_ones_skipped() {
        let path = std::env::temp_dir().join(format!("pirun-source-{}", std::process::id()));
        std::fs::write(&path, b"a b\n\n  \nc\r\nlast").unwrap();
        let mut s = Source::file(&path).unwrap();
        let mut got = Vec::new();
        while let Some(i) = s.next_input().unwrap() {
            got.push((i.index, String::from_utf8(i.text).unwrap()));
        }
        assert_eq!(
            got,
            [(1, "a b".into()), (4, "c".into()), (5, "last".to_string())]
        );
        assert_eq!(count(None, Some(&path)), Some(3));

        std::fs::write(&path, b"\n \n").unwrap();
        let err = Source::file(&path).unwrap().next_input().unwrap_err();
        assert!(err.to_string().contains("no tasks"), "{err}");

        let mut long = vec![b'x'; MAX_LINE + 1];
        long.push(b'\n');
        std::fs::write(&path, &long).unwrap();
        let err = Source::file(&path).unwrap().next_input().unwrap_err();
        assert!(err.to_string().contains("line 1 is longer"), "{err}");
        std::fs::remove_file(&path).unwrap();

        assert!(Source::file(Path::new("/nonexistent/tasks")).is_err());
    }

    #[test]
    fn indices_give_their_decimal_text() {
        let spec: IndexSpec = "8-10:2".parse().unwrap();
        let mut s = Source::indices(&spec);
        assert_eq!(
            s.next_input().unwrap(),
            Some(Input {
                index: 8,
                text: b"8".to_vec()
            })
        );
        assert_eq!(s.next_input().unwrap().unwrap().index, 10);
        assert_eq!(s.next_input().unwrap(), None);
        assert_eq!(count(Some(&spec), None), Some(2));
    }
}
