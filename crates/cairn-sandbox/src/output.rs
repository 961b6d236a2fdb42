//! Draining the sandbox's stdout and stderr: one reader thread (both pipes, by
//! `poll`) cuts the bytes into lines (or chunks of at most `max_line_bytes`) and
//! hands them to the supervisor.

use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::mpsc::SyncSender;

use crate::spec::Stream;

/// What the reader and waiter threads tell the supervisor.
#[derive(Debug)]
pub(crate) enum Event {
    Line(Stream, Vec<u8>),
    /// The stream reached end of file (or failed, which ends it just the same).
    Closed,
    /// bubblewrap exited.
    Exited(std::io::Result<std::process::ExitStatus>),
}

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

/// Drains several pipes on one thread: waits with `poll(2)` for any of them, reads
/// what is there, and sends each one's lines (its last, unterminated line at its
/// end) and then its [`Event::Closed`]. Returns when every pipe has reached its end
/// (or failed, which ends it just the same); stops sending lines once the
/// supervisor is gone.
pub(crate) fn pump_all<S: Read + AsFd>(
    sources: Vec<(S, Stream)>,
    max: usize,
    events: SyncSender<Event>,
) {
    let mut open: Vec<(S, Stream, LineSplitter)> = sources
        .into_iter()
        .map(|(source, stream)| (source, stream, LineSplitter::new(max)))
        .collect();
    let mut buffer = vec![0u8; 64 << 10];
    let mut receiver_gone = false;
    while !open.is_empty() {
        let mut polled: Vec<libc::pollfd> = open
            .iter()
            .map(|(source, _, _)| libc::pollfd {
                fd: source.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: poll(2) on an array of pollfds we own, its length given.
        let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, -1) };
        if ready < 0 {
            if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            // poll itself failed: every pipe ends here, as a failed read would.
            for p in &mut polled {
                p.revents = libc::POLLERR;
            }
        }
        let mut index = 0;
        for p in polled {
            if p.revents == 0 {
                index += 1;
                continue;
            }
            let (source, stream, splitter) = &mut open[index];
            let stream = *stream;
            let mut emit = |line: Vec<u8>| {
                if !receiver_gone && events.send(Event::Line(stream, line)).is_err() {
                    receiver_gone = true;
                }
            };
            let ended = match source.read(&mut buffer) {
                Ok(0) => true,
                Ok(n) => {
                    splitter.feed(&buffer[..n], &mut emit);
                    false
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => false,
                Err(_) => true,
            };
            if ended {
                let (_, _, splitter) = open.remove(index);
                splitter.finish(&mut emit);
                let _ = events.send(Event::Closed);
            } else {
                index += 1;
            }
        }
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
