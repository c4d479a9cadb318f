//! What OBJECT ENCODING reports for a string value in Redis 7.0.15 (object.c).
//!
//! The encoding depends on how the value was produced, not only on its bytes: SET-like
//! commands run `tryObjectEncoding` ("int" for text `string2l` accepts within 20 bytes,
//! "embstr" up to 44 bytes, else "raw"); INCR-family results are always "int"; INCRBYFLOAT
//! stores its text unencoded ("embstr" up to 44 bytes, else "raw"); APPEND to an existing key,
//! SETRANGE and SETBIT modify a private copy in place, which is always "raw". Purely
//! descriptive: this server stores bytes, and only reports what Redis would.

use super::integer::string2ll;

/// Longest string Redis embeds in the object header.
pub const EMBSTR_SIZE_LIMIT: usize = 44;

/// Redis's string encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringEncoding {
    /// A `long` stored in the pointer.
    Int,
    /// Object and bytes in one allocation.
    Embstr,
    /// A separate, growable buffer.
    Raw,
}

impl StringEncoding {
    /// The name OBJECT ENCODING replies with.
    pub fn as_str(self) -> &'static str {
        match self {
            StringEncoding::Int => "int",
            StringEncoding::Embstr => "embstr",
            StringEncoding::Raw => "raw",
        }
    }
}

/// How a value came to be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueOrigin {
    /// SET, SETNX, SETEX, PSETEX, GETSET, MSET, MSETNX, GETEX/GETDEL untouched values, and
    /// APPEND or SET-like creation of a new key.
    Set,
    /// INCR, DECR, INCRBY, DECRBY.
    IntegerCounter,
    /// INCRBYFLOAT.
    FloatCounter,
    /// APPEND to an existing key, SETRANGE, SETBIT.
    ModifiedInPlace,
}

/// The encoding Redis would report for `value` produced as `origin`.
pub fn string_encoding(value: &[u8], origin: ValueOrigin) -> StringEncoding {
    match origin {
        ValueOrigin::Set if value.len() <= 20 && string2ll(value).is_some() => StringEncoding::Int,
        ValueOrigin::IntegerCounter => StringEncoding::Int,
        ValueOrigin::Set | ValueOrigin::FloatCounter if value.len() <= EMBSTR_SIZE_LIMIT => {
            StringEncoding::Embstr
        }
        _ => StringEncoding::Raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        use ValueOrigin::*;
        assert_eq!(string_encoding(b"123", Set), StringEncoding::Int);
        assert_eq!(
            string_encoding(b"-9223372036854775808", Set),
            StringEncoding::Int
        );
        assert_eq!(string_encoding(b"0123", Set), StringEncoding::Embstr);
        assert_eq!(string_encoding(&[b'a'; 44], Set), StringEncoding::Embstr);
        assert_eq!(string_encoding(&[b'a'; 45], Set), StringEncoding::Raw);
        assert_eq!(string_encoding(b"12", ModifiedInPlace), StringEncoding::Raw);
        assert_eq!(string_encoding(b"12", FloatCounter), StringEncoding::Embstr);
        assert_eq!(StringEncoding::Int.as_str(), "int");
    }
}
