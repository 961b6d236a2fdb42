//! Draining the sandbox's stdout and stderr: each pipe is read when `poll` says so
//! (on the supervisor's own thread, see [`crate::supervise`]), its bytes cut into
//! lines (or chunks of at most `max_line_bytes`).

use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, RawFd};

use crate::spec::Stream;

/// Cuts a byte stream into lines without their line ending (`\n`, or `\r\n`), and
/// lines longer than `max` into chunks of exactly `max` bytes.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    max: usize,
    pending: Vec<u8>,
    /// The last thing emitted was a full chunk: a newline right after it ends that
    /// line rather than starting an empty one (the same split whatever the reads).
    after_chunk: bool,
}

impl LineSplitter {
    pub(crate) fn new(max: usize) -> Self {
        LineSplitter {
            max: max.max(1),
            pending: Vec::new(),
            after_chunk: false,
        }
    }

    /// Feeds `data`; `emit` gets every completed line or chunk.
    pub(crate) fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(Vec<u8>)) {
        while !data.is_empty() {
            if std::mem::take(&mut self.after_chunk) && data[0] == b'\n' {
                data = &data[1..];
                continue;
            }
            let room = self.max - self.pending.len();
            // A newline right after `room` bytes still ends a line of exactly `max`.
            let window = &data[..data.len().min(room + 1)];
            if let Some(at) = window.iter().position(|&b| b == b'\n') {
                self.pending.extend_from_slice(&data[..at]);
                data = &data[at + 1..];
                if self.pending.last() == Some(&b'\r') {
                    self.pending.pop();
                }
                emit(std::mem::take(&mut self.pending));
            } else {
                let take = data.len().min(room);
                self.pending.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.pending.len() == self.max {
                    emit(std::mem::take(&mut self.pending));
                    self.after_chunk = true;
                }
            }
        }
    }

    /// The last, unterminated line, if any.
    pub(crate) fn finish(self, emit: &mut impl FnMut(Vec<u8>)) {
        if !self.pending.is_empty() {
            emit(self.pending);
        }
    }
}

/// One of the sandbox's output pipes, read only once `poll(2)` reported it ready
/// (so a read never blocks), cut into lines by its own [`LineSplitter`].
pub(crate) struct OutputPipe<S> {
    source: S,
    stream: Stream,
    splitter: Option<LineSplitter>,
}

impl<S: Read + AsFd> OutputPipe<S> {
    pub(crate) fn new(source: S, stream: Stream, max: usize) -> Self {
        OutputPipe {
            source,
            stream,
            splitter: Some(LineSplitter::new(max)),
        }
    }

    /// The descriptor to poll while the pipe is open; `None` once it has ended.
    pub(crate) fn fd(&self) -> Option<RawFd> {
        self.splitter
            .as_ref()
            .map(|_| self.source.as_fd().as_raw_fd())
    }

    pub(crate) fn stream(&self) -> Stream {
        self.stream
    }

    /// One read (after `poll` said the pipe is readable or hung up): `emit` gets
    /// every line it completes, and at the end of file (or a failed read, which
    /// ends it just the same) the last, unterminated one. Returns whether the pipe
    /// is still open.
    pub(crate) fn read_once(&mut self, buffer: &mut [u8], emit: &mut impl FnMut(Vec<u8>)) -> bool {
        let Some(splitter) = self.splitter.as_mut() else {
            return false;
        };
        let ended = match self.source.read(buffer) {
            Ok(0) => true,
            Ok(n) => {
                splitter.feed(&buffer[..n], emit);
                false
            }
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => false,
            Err(_) => true,
        };
        if ended && let Some(splitter) = self.splitter.take() {
            splitter.finish(emit);
        }
        !ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut splitter = LineSplitter::new(max);
        for piece in pieces {
            splitter.feed(piece, &mut |l| out.push(l));
        }
        splitter.finish(&mut |l| out.push(l));
        out
    }

    fn lines(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn splits_lines() {
        /// (max, the reads, the lines expected)
        type Case<'a> = (usize, &'a [&'a [u8]], &'a [&'a str]);
        let cases: &[Case] = &[
            (8, &[b"a\nb\n"], &["a", "b"]),
            (8, &[b"a\r\nb"], &["a", "b"]),
            (8, &[b"\n\n"], &["", ""]),
            (8, &[b"ab", b"c\nd", b"e"], &["abc", "de"]),
            (4, &[b"abcd\n"], &["abcd"]),
            (4, &[b"abcd", b"\n"], &["abcd"]),
            (4, &[b"abcdefghij"], &["abcd", "efgh", "ij"]),
            (4, &[b"abcde\nf"], &["abcd", "e", "f"]),
            (4, &[b"abcdefgh", b"\n", b"\n"], &["abcd", "efgh", ""]),
            (4, &[b"abcdefgh\n"], &["abcd", "efgh"]),
            (1, &[b"ab\n"], &["a", "b"]),
            (8, &[b""], &[]),
        ];
        for (max, pieces, expected) in cases {
            assert_eq!(
                split(*max, pieces),
                lines(expected),
                "max {max}, {pieces:?}"
            );
        }
    }

    #[test]
    fn keeps_binary_bytes() {
        let junk: Vec<u8> = (0u8..=255).filter(|&b| b != b'\n').collect();
        let mut input = junk.clone();
        input.push(b'\n');
        assert_eq!(split(1024, &[&input]), vec![junk]);
    }
}
