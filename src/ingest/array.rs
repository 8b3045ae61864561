//! A JSON array of records read as JSON Lines: `[{...}, {...}]` becomes one element per line,
//! so the same streaming reader (and its errors) serves both forms without holding the array.
//! Element `n` (1-based) becomes line `n`. Raw newlines inside an element are whitespace in
//! JSON (a string cannot hold one unescaped), so they are turned into spaces.

use std::io::{self, BufRead, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// After `[` or `,`: an element (or, right after `[`, the closing `]`) comes next.
    Element { first: bool },
    /// Inside an element.
    Inside,
    /// After an element: `,` or `]`.
    Between,
    /// After the closing `]`: only whitespace.
    Done,
}

/// Reads a JSON array from `inner` and yields its elements one per line.
pub struct ArrayLines<R> {
    inner: R,
    state: State,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Bytes consumed from `inner` so far, for error positions.
    offset: u64,
    /// Output not yet handed to the reader.
    pending: Vec<u8>,
    at: usize,
}

impl<R: BufRead> ArrayLines<R> {
    pub fn new(inner: R) -> Self {
        ArrayLines {
            inner,
            state: State::Start,
            depth: 0,
            in_string: false,
            escaped: false,
            offset: 0,
            pending: Vec::new(),
            at: 0,
        }
    }

    fn error(&self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("JSON array: {what} at byte {}", self.offset + 1),
        )
    }

    /// Convert the next chunk of input into `pending`; `false` at the end of input.
    fn refill(&mut self) -> io::Result<bool> {
        self.pending.clear();
        self.at = 0;
        let chunk = loop {
            match self.inner.fill_buf() {
                Ok(c) => break c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if chunk.is_empty() {
            return match self.state {
                State::Done => Ok(false),
                State::Start => Err(self.error("empty body; expected `[`")),
                _ => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "JSON array: the body ends before the closing `]` (after byte {})",
                        self.offset
                    ),
                )),
            };
        }
        let chunk = chunk.to_vec();
        let mut used = 0;
        for &b in &chunk {
            let result = self.step(b);
            if let Err(e) = result {
                self.inner.consume(used);
                return Err(e);
            }
            used += 1;
            self.offset += 1;
        }
        self.inner.consume(used);
        Ok(true)
    }

    fn step(&mut self, b: u8) -> io::Result<()> {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        match self.state {
            State::Start if ws => {}
            State::Start if b == b'[' => self.state = State::Element { first: true },
            State::Start => return Err(self.error("expected `[`")),
            State::Element { .. } if ws => {}
            State::Element { first: true } if b == b']' => self.state = State::Done,
            State::Element { .. } if b == b',' || b == b']' => {
                return Err(self.error("expected an element"))
            }
            State::Element { .. } => {
                self.state = State::Inside;
                self.depth = 0;
                self.in_string = false;
                self.escaped = false;
                return self.inside(b);
            }
            State::Inside => return self.inside(b),
            State::Between if ws => {}
            State::Between if b == b',' => self.state = State::Element { first: false },
            State::Between if b == b']' => self.state = State::Done,
            State::Between => return Err(self.error("expected `,` or `]` after an element")),
            State::Done if ws => {}
            State::Done => return Err(self.error("unexpected data after the closing `]`")),
        }
        Ok(())
    }

    fn inside(&mut self, b: u8) -> io::Result<()> {
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            self.pending.push(b);
            return Ok(());
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' if self.depth > 0 => self.depth -= 1,
            b']' => {
                self.pending.push(b'\n');
                self.state = State::Done;
                return Ok(());
            }
            b',' if self.depth == 0 => {
                self.pending.push(b'\n');
                self.state = State::Element { first: false };
                return Ok(());
            }
            _ => {}
        }
        self.pending
            .push(if b == b'\n' || b == b'\r' { b' ' } else { b });
        if self.depth == 0 && (b == b'}' || b == b']') {
            // A complete object or array: the element ends here.
            self.pending.push(b'\n');
            self.state = State::Between;
        }
        Ok(())
    }
}

impl<R: BufRead> Read for ArrayLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.pending.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &str) -> io::Result<String> {
        let mut out = String::new();
        ArrayLines::new(io::BufReader::with_capacity(3, input.as_bytes()))
            .read_to_string(&mut out)?;
        Ok(out)
    }

    #[test]
    fn elements_become_lines() {
        assert_eq!(
            lines("[{\"a\": [1, {\"b\": \"],\\\"\"}]},\n {\"c\":\n2}, 7 ]\n").unwrap(),
            "{\"a\": [1, {\"b\": \"],\\\"\"}]}\n{\"c\": 2}\n7 \n"
        );
        assert_eq!(lines(" [ ] ").unwrap(), "");
    }

    #[test]
    fn malformed_arrays_say_where() {
        for (input, message) in [
            ("", "empty body"),
            ("{}", "expected `[` at byte 1"),
            ("[{},]", "expected an element at byte 5"),
            ("[{} {}]", "expected `,` or `]` after an element at byte 5"),
            ("[{}] x", "unexpected data after the closing `]` at byte 6"),
            ("[{\"a\":1}", "ends before the closing `]`"),
        ] {
            let e = lines(input).expect_err(input);
            assert!(e.to_string().contains(message), "{input}: {e}");
        }
    }
}
