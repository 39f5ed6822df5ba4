//! Compact byte storage for what the keyspace keeps per key: key names
//! inline in the key table's slot, and values in one exact allocation.
//!
//! A `Bytes` made from a `Vec` allocates again the first time it is cloned
//! (its shared header), and applying a delta clones every value it stores,
//! so a plain copy cost a short value two heap blocks. [`stored_bytes`]
//! puts the reference count in the same block as the bytes, so a stored
//! value is one block whose clones only count. [`KeyBytes`] keeps a short
//! key name in the slot itself: most keys are short, and a name the table
//! owns is never shared.

use bytes::Bytes;

/// The longest value [`stored_bytes`] keeps in one block with its count
/// (the count and a length byte make the block 128 bytes, a jemalloc size
/// class); longer values take a block for the bytes and one for the count.
pub const INLINE_VALUE_MAX: usize = 119;

/// `len` bytes inline, for a `Bytes` owner: `8 + 1 + N` bytes in all.
struct InlineValue<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> AsRef<[u8]> for InlineValue<N> {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

fn inline_value<const N: usize>(data: &[u8]) -> Bytes {
    let (len, bytes) = inline_array::<N>(data);
    Bytes::from_owner(InlineValue { len, bytes })
}

/// An owned copy of `data` to store, in as few heap blocks as the sizes
/// allow: one (count and bytes together, at the smallest of the 32, 48,
/// 64, 96 or 128-byte size classes that fits) up to [`INLINE_VALUE_MAX`]
/// bytes, else the bytes exactly sized. Never points into `data`'s buffer.
pub fn stored_bytes(data: &[u8]) -> Bytes {
    match data.len() {
        0 => Bytes::new(),
        1..=23 => inline_value::<23>(data),
        24..=39 => inline_value::<39>(data),
        40..=55 => inline_value::<55>(data),
        56..=87 => inline_value::<87>(data),
        88..=INLINE_VALUE_MAX => inline_value::<INLINE_VALUE_MAX>(data),
        _ => Bytes::from(data.to_vec()),
    }
}

/// `data` (at most `N` bytes) as a length and a zero-padded array, the
/// inline form of [`KeyBytes`] and [`StoredValue`].
fn inline_array<const N: usize>(data: &[u8]) -> (u8, [u8; N]) {
    debug_assert!(data.len() <= N && N <= u8::MAX as usize);
    let mut bytes = [0; N];
    bytes[..data.len()].copy_from_slice(data);
    (data.len() as u8, bytes)
}

/// String values up to this long live inside the key's version itself.
pub const INLINE_STRING_MAX: usize = 22;

/// A string value as a key version stores it: inline when short (no heap
/// block at all), else a boxed `Bytes` (one word in the version; reads
/// clone it rather than copy). 24 bytes, and `Option<StoredValue>` too.
/// Serialized as the byte string it holds, as `Bytes` is.
#[derive(Clone)]
pub enum StoredValue {
    Inline {
        len: u8,
        bytes: [u8; INLINE_STRING_MAX],
    },
    Shared(Box<Bytes>),
}

impl StoredValue {
    pub fn new(value: &[u8]) -> StoredValue {
        if value.len() <= INLINE_STRING_MAX {
            let (len, bytes) = inline_array(value);
            StoredValue::Inline { len, bytes }
        } else {
            StoredValue::Shared(Box::new(stored_bytes(value)))
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            StoredValue::Inline { len, bytes } => &bytes[..*len as usize],
            StoredValue::Shared(bytes) => bytes,
        }
    }

    /// The value as `Bytes`: a copy when inline, else a clone of the
    /// stored handle (no copy of a big value).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            StoredValue::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            StoredValue::Shared(bytes) => Bytes::clone(bytes),
        }
    }
}

/// Takes over a value already stored on its own (as `args::owned` and
/// [`stored_bytes`] make them): no copy unless it is short enough to go
/// inline.
impl From<Bytes> for StoredValue {
    fn from(value: Bytes) -> StoredValue {
        if value.len() <= INLINE_STRING_MAX {
            StoredValue::new(&value)
        } else {
            StoredValue::Shared(Box::new(value))
        }
    }
}

impl std::ops::Deref for StoredValue {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for StoredValue {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for StoredValue {
    fn eq(&self, other: &StoredValue) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for StoredValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_slice()))
    }
}

impl serde::Serialize for StoredValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.as_slice())
    }
}

/// Decoded (from a peer's batch or a file) into a stored form of its own,
/// never pointing into the decoder's buffer.
impl<'de> serde::Deserialize<'de> for StoredValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<StoredValue, D::Error> {
        let value: Bytes = serde::Deserialize::deserialize(deserializer)?;
        Ok(StoredValue::new(&value))
    }
}

/// Key names up to this long live in the slot (24 bytes with the tag and
/// length, the size of a boxed slice plus a word).
pub const INLINE_KEY_MAX: usize = 22;

/// A key name owned by the key table: inline when short, else one exact
/// heap block.
#[derive(Clone)]
pub enum KeyBytes {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_MAX],
    },
    Heap(Box<[u8]>),
}

impl KeyBytes {
    pub fn new(name: &[u8]) -> KeyBytes {
        if name.len() <= INLINE_KEY_MAX {
            let (len, bytes) = inline_array(name);
            KeyBytes::Inline { len, bytes }
        } else {
            KeyBytes::Heap(name.into())
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            KeyBytes::Inline { len, bytes } => &bytes[..*len as usize],
            KeyBytes::Heap(bytes) => bytes,
        }
    }

    /// The name as a `Bytes` of its own (for deltas, replies and lists
    /// that outlive the slot).
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_slice())
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_round_trip_at_every_length_around_the_classes() {
        for len in 0..300 {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let stored = stored_bytes(&data);
            assert_eq!(stored.as_ref(), &data[..], "length {len}");
            let clone = stored.clone();
            drop(stored);
            assert_eq!(clone.as_ref(), &data[..], "a clone outlives the original");
            assert_eq!(clone.slice(len / 2..).as_ref(), &data[len / 2..]);
        }
    }

    #[test]
    fn stored_bytes_never_points_into_the_source() {
        let source = Bytes::from(vec![9u8; 64]);
        let stored = stored_bytes(&source[..40]);
        assert_ne!(stored.as_ptr(), source.as_ptr());
    }

    #[test]
    fn stored_values_read_and_encode_as_bytes_do_at_every_length() {
        assert_eq!(std::mem::size_of::<Option<StoredValue>>(), 24);
        let config = bincode::config::standard();
        for len in 0..200 {
            let data = Bytes::from((0..len).map(|i| (i * 5 + 1) as u8).collect::<Vec<u8>>());
            let value = StoredValue::from(data.clone());
            assert_eq!(value.as_slice(), &data[..]);
            assert_eq!(value.to_bytes(), data);
            assert_eq!(value, StoredValue::new(&data));
            let inline = matches!(value, StoredValue::Inline { .. });
            assert_eq!(inline, len <= INLINE_STRING_MAX, "length {len}");
            let wire = bincode::serde::encode_to_vec(&value, config).unwrap();
            assert_eq!(wire, bincode::serde::encode_to_vec(&data, config).unwrap());
            let (back, _): (StoredValue, usize) =
                bincode::serde::decode_from_slice(&wire, config).unwrap();
            assert_eq!(back, value);
        }
    }

    #[test]
    fn key_bytes_inline_up_to_the_limit_then_heap() {
        assert_eq!(std::mem::size_of::<KeyBytes>(), 24);
        for len in 0..64 {
            let name: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let key = KeyBytes::new(&name);
            assert_eq!(key.as_slice(), &name[..]);
            assert_eq!(key.to_bytes().as_ref(), &name[..]);
            let inline = matches!(key, KeyBytes::Inline { .. });
            assert_eq!(inline, len <= INLINE_KEY_MAX, "length {len}");
        }
    }
}
