//! The XML side of the import: a small element tree, streamed one `<product>` at a time.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{IofError, XmlProblem};

/// Where something is in a file: its line (from 1) and byte offset (from 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub byte: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} (byte {})", self.line, self.byte)
    }
}

impl Position {
    /// Before the first element (errors about the file as a whole).
    pub(super) const START: Position = Position { line: 1, byte: 0 };
}

/// Counts the lines the XML parser has consumed. quick-xml consumes its input up to the end
/// of the last event (plus, after text, the `<` that ended it), so the count taken before an
/// event is that event's line — without keeping the file, or a table of line starts, in
/// memory. It also notes a leading byte-order mark, which quick-xml's offsets leave out.
pub(super) struct Lines<R> {
    inner: R,
    newlines: u64,
    bom: u64,
}

impl<R: BufRead> Lines<R> {
    pub(super) fn new(mut inner: R) -> Self {
        // An unreadable start is reported by the parser's first read, not here.
        let bom = match inner.fill_buf() {
            Ok(start) if start.starts_with(b"\xEF\xBB\xBF") => 3,
            _ => 0,
        };
        Lines {
            inner,
            newlines: 0,
            bom,
        }
    }
}

impl<R: BufRead> Read for Lines<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Lines<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let n = amt.min(buf.len());
            self.newlines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        self.inner.consume(amt);
    }
}

/// The position the parser of `reader` has reached.
fn position_of<R: BufRead>(reader: &Reader<Lines<R>>) -> Position {
    let lines = reader.get_ref();
    Position {
        line: lines.newlines + 1,
        byte: reader.buffer_position().saturating_add(lines.bom),
    }
}

/// One element: local name, whether it is an `iaiext:` extension, attributes by qualified
/// name, children and text.
#[derive(Debug, Default, Clone)]
pub(super) struct Node {
    pub(super) name: String,
    pub(super) ext: bool,
    pub(super) attrs: Vec<(String, String)>,
    pub(super) children: Vec<Node>,
    pub(super) text: String,
}

impl Node {
    pub(super) fn attr(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| {
            self.attrs
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        })
    }

    /// Core (non-extension) children named `name`.
    pub(super) fn kids<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children
            .iter()
            .filter(move |c| !c.ext && c.name == name)
    }

    pub(super) fn kid(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| !c.ext && c.name == name)
    }

    pub(super) fn trimmed(&self) -> &str {
        self.text.trim()
    }
}

pub(super) fn split_name(qname: &[u8]) -> (bool, String) {
    let s = String::from_utf8_lossy(qname);
    match s.split_once(':') {
        Some((prefix, local)) => (prefix == "iaiext", local.to_string()),
        None => (false, s.into_owned()),
    }
}

pub(super) fn start_node(
    e: &BytesStart,
    path: &Path,
    position: Position,
) -> Result<Node, IofError> {
    let (ext, name) = split_name(e.name().as_ref());
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| IofError::Xml {
            path: path.to_path_buf(),
            position,
            problem: quick_xml::Error::from(err).into(),
        })?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|err| IofError::Xml {
                path: path.to_path_buf(),
                position,
                problem: err.into(),
            })?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Node {
        name,
        ext,
        attrs,
        ..Node::default()
    })
}

/// Streams the elements at `target` (a path of local names from the root) as trees.
pub(super) struct Stream<R: BufRead> {
    pub(super) reader: Reader<Lines<R>>,
    pub(super) path: PathBuf,
    pub(super) buf: Vec<u8>,
    pub(super) stack: Vec<String>,
    pub(super) target: &'static [&'static str],
    /// Attributes of the elements on the stack, by local name (for `products@language`).
    pub(super) context: HashMap<String, Vec<(String, String)>>,
}

pub(super) const MAX_DEPTH: usize = 64;

impl<R: BufRead> Stream<R> {
    pub(super) fn new(reader: R, path: &Path, target: &'static [&'static str]) -> Self {
        let mut reader = Reader::from_reader(Lines::new(reader));
        reader.config_mut().trim_text(false);
        Stream {
            reader,
            path: path.to_path_buf(),
            buf: Vec::new(),
            stack: Vec::new(),
            target,
            context: HashMap::new(),
        }
    }

    pub(super) fn position(&self) -> Position {
        position_of(&self.reader)
    }

    pub(super) fn xml_error(&self, problem: impl Into<XmlProblem>) -> IofError {
        IofError::Xml {
            path: self.path.clone(),
            position: self.position(),
            problem: problem.into(),
        }
    }

    /// The next target element and where it started; `None` at the end.
    pub(super) fn next_node(&mut self) -> Result<Option<(Node, Position)>, IofError> {
        loop {
            let at = self.position();
            self.buf.clear();
            let event = self
                .reader
                .read_event_into(&mut self.buf)
                .map_err(|e| IofError::Xml {
                    path: self.path.clone(),
                    position: at,
                    problem: e.into(),
                })?;
            match event {
                Event::Start(e) => {
                    let (_, name) = split_name(e.name().as_ref());
                    let mut path: Vec<&str> = self.stack.iter().map(String::as_str).collect();
                    path.push(&name);
                    if path == self.target {
                        let node = start_node(&e, &self.path, at)?;
                        let node = self.read_children(node)?;
                        return Ok(Some((node, at)));
                    }
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(self.xml_error("elements nested too deeply"));
                    }
                    let node = start_node(&e, &self.path, at)?;
                    self.context.insert(name.clone(), node.attrs);
                    self.stack.push(name);
                }
                Event::Empty(e) => {
                    let (_, name) = split_name(e.name().as_ref());
                    let mut path: Vec<&str> = self.stack.iter().map(String::as_str).collect();
                    path.push(&name);
                    if path == self.target {
                        return Ok(Some((start_node(&e, &self.path, at)?, at)));
                    }
                }
                Event::End(_) => {
                    self.stack.pop();
                }
                Event::Eof => {
                    if !self.stack.is_empty() {
                        return Err(self.xml_error(format!(
                            "the file ends inside <{}>",
                            self.stack.join("><")
                        )));
                    }
                    return Ok(None);
                }
                _ => {}
            }
        }
    }

    /// Read the content of `node` (whose start tag was just read) up to its end tag.
    pub(super) fn read_children(&mut self, node: Node) -> Result<Node, IofError> {
        let mut open = vec![node];
        loop {
            let at = self.position();
            self.buf.clear();
            let event = self
                .reader
                .read_event_into(&mut self.buf)
                .map_err(|e| IofError::Xml {
                    path: self.path.clone(),
                    position: at,
                    problem: e.into(),
                })?;
            match event {
                Event::Start(e) => {
                    if open.len() >= MAX_DEPTH {
                        return Err(self.xml_error("elements nested too deeply"));
                    }
                    open.push(start_node(&e, &self.path, at)?);
                }
                Event::Empty(e) => {
                    let child = start_node(&e, &self.path, at)?;
                    if let Some(top) = open.last_mut() {
                        top.children.push(child);
                    }
                }
                Event::Text(t) => {
                    let text = t.unescape();
                    match text {
                        Ok(text) => {
                            if let Some(top) = open.last_mut() {
                                top.text.push_str(&text);
                            }
                        }
                        Err(e) => return Err(self.xml_error(e)),
                    }
                }
                Event::CData(c) => {
                    let text = std::str::from_utf8(&c).map(str::to_owned);
                    match text {
                        Ok(text) => {
                            if let Some(top) = open.last_mut() {
                                top.text.push_str(&text);
                            }
                        }
                        Err(e) => return Err(self.xml_error(e)),
                    }
                }
                Event::End(_) => {
                    let Some(done) = open.pop() else {
                        return Err(self.xml_error("unbalanced end tag"));
                    };
                    match open.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Event::Eof => {
                    return Err(self.xml_error("the file ends inside an element"));
                }
                _ => {}
            }
        }
    }
}

pub(super) fn open(path: &Path) -> Result<std::io::BufReader<File>, IofError> {
    File::open(path)
        .map(|f| std::io::BufReader::with_capacity(256 << 10, f))
        .map_err(|source| IofError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The root element of a (small) file, whole.
pub(super) fn read_document(path: &Path) -> Result<Node, IofError> {
    let mut reader = Reader::from_reader(Lines::new(open(path)?));
    let mut buf = Vec::new();
    loop {
        let at = position_of(&reader);
        buf.clear();
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let node = start_node(&e, path, at)?;
                let mut stream = Stream {
                    reader,
                    path: path.to_path_buf(),
                    buf: Vec::new(),
                    stack: Vec::new(),
                    target: &[],
                    context: HashMap::new(),
                };
                return stream.read_children(node);
            }
            Ok(Event::Empty(e)) => return start_node(&e, path, at),
            Ok(Event::Eof) => {
                return Err(IofError::Xml {
                    path: path.to_path_buf(),
                    position: at,
                    problem: "no root element".into(),
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(IofError::Xml {
                    path: path.to_path_buf(),
                    position: at,
                    problem: e.into(),
                })
            }
        }
    }
}

/// The local name of a file's root element.
pub(super) fn root_name(path: &Path) -> Result<String, IofError> {
    let mut reader = Reader::from_reader(Lines::new(open(path)?));
    let mut buf = Vec::new();
    loop {
        let at = position_of(&reader);
        buf.clear();
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => return Ok(split_name(e.name().as_ref()).1),
            Ok(Event::Eof) => {
                return Err(IofError::Xml {
                    path: path.to_path_buf(),
                    position: at,
                    problem: "no root element".into(),
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(IofError::Xml {
                    path: path.to_path_buf(),
                    position: at,
                    problem: e.into(),
                })
            }
        }
    }
}
