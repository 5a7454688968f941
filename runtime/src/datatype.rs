//! Type signatures carried in frame headers, so that a message received as the wrong type
//! is an error rather than garbage.
//!
//! A signature is a 32-bit FNV-1a hash of the element type's name; raw `Pod` messages also
//! carry the element size, which catches `usize`/`isize` exchanged between a 32-bit and a
//! 64-bit board. Untyped byte messages carry signature 0 and are accepted by any receive
//! of bytes.

/// Signature and element size of a message's element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeInfo {
    /// Hash of the type name; 0 for untyped bytes.
    pub sig: u32,
    /// Size of one element; 0 for serde values and untyped bytes.
    pub elem_size: u32,
    /// Whether the payload is postcard-encoded.
    pub serde: bool,
    /// Type name, for error messages (local side only, never sent).
    pub name: &'static str,
}

impl TypeInfo {
    /// Untyped bytes: match anything on receive.
    pub const BYTES: TypeInfo = TypeInfo {
        sig: 0,
        elem_size: 0,
        serde: false,
        name: "bytes",
    };

    /// A raw slice of `T`.
    pub fn pod<T: bytemuck::Pod>() -> TypeInfo {
        let name = std::any::type_name::<T>();
        TypeInfo {
            sig: signature(name),
            elem_size: std::mem::size_of::<T>() as u32,
            serde: false,
            name,
        }
    }

    /// A postcard-encoded `T`.
    pub fn serde<T: ?Sized>() -> TypeInfo {
        let name = std::any::type_name::<T>();
        TypeInfo {
            sig: signature(name),
            elem_size: 0,
            serde: true,
            name,
        }
    }

    /// Checks a received header's type against this expected type; returns a description
    /// of the difference on mismatch.
    pub fn check(&self, sig: u32, elem_size: u32, serde: bool) -> Result<(), String> {
        if self.sig == 0 {
            return Ok(());
        }
        if serde != self.serde {
            return Err(if serde {
                " (it is a serde value; receive it with recv_value)".into()
            } else {
                " (it is a raw slice; receive it with recv)".into()
            });
        }
        if elem_size != self.elem_size {
            return Err(format!(
                " (elements of {elem_size} bytes arrived, `{}` is {} bytes here; usize/isize \
                 differ between 32- and 64-bit hosts: send fixed-width integers)",
                self.name, self.elem_size
            ));
        }
        if sig != self.sig && sig != 0 {
            return Err(String::new());
        }
        Ok(())
    }
}

/// FNV-1a, 32 bits, of a type name: the signature a message of that element type
/// carries; never 0 (0 means untyped). Public (hidden) for the micro-benchmarks.
///
/// ```
/// assert_ne!(pirun::type_signature("f64"), pirun::type_signature("u64"));
/// assert_ne!(pirun::type_signature(""), 0);
/// ```
pub fn signature(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_different_types_are_told_apart() {
        let f = TypeInfo::pod::<f64>();
        let u = TypeInfo::pod::<u64>();
        assert!(f.check(u.sig, u.elem_size, false).is_err());
        assert!(f.check(f.sig, f.elem_size, false).is_ok());
    }

    #[test]
    fn element_size_mismatch_names_usize() {
        let u = TypeInfo::pod::<usize>();
        let err = u.check(u.sig, 4 + u.elem_size, false).unwrap_err();
        assert!(err.contains("usize"), "{err}");
    }

    #[test]
    fn bytes_accept_anything_and_serde_is_not_pod() {
        assert!(TypeInfo::BYTES.check(123, 8, false).is_ok());
        let s = TypeInfo::serde::<Vec<u64>>();
        assert!(s.check(s.sig, 0, false).is_err());
    }
}
