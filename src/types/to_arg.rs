//! [`ToArg`]: one Rust value as one command argument.

use bytes::{BufMut, Bytes, BytesMut};

/// A value that can be sent as one command argument.
///
/// Integers and floats are sent as their decimal text (floats in the shortest form that reads
/// back to the same number, `inf`/`-inf` as Redis spells them); strings and bytes as they are.
pub trait ToArg {
    /// Append this value's bytes to `out` (no framing: the caller writes the length).
    fn write_arg(&self, out: &mut BytesMut);
}

impl<T: ToArg + ?Sized> ToArg for &T {
    fn write_arg(&self, out: &mut BytesMut) {
        (**self).write_arg(out)
    }
}

impl ToArg for str {
    fn write_arg(&self, out: &mut BytesMut) {
        out.put_slice(self.as_bytes())
    }
}

impl ToArg for String {
    fn write_arg(&self, out: &mut BytesMut) {
        out.put_slice(self.as_bytes())
    }
}

impl ToArg for [u8] {
    fn write_arg(&self, out: &mut BytesMut) {
        out.put_slice(self)
    }
}

impl<const N: usize> ToArg for [u8; N] {
    fn write_arg(&self, out: &mut BytesMut) {
        out.put_slice(self)
    }
}

impl ToArg for Vec<u8> {
    fn write_arg(&self, out: &mut BytesMut) {
        out.put_slice(self)
    }
}

impl ToArg for Bytes {
    fn write_arg(&self, out: &mut BytesMut) {
        out.put_slice(self)
    }
}

impl ToArg for std::borrow::Cow<'_, str> {
    fn write_arg(&self, out: &mut BytesMut) {
        out.put_slice(self.as_bytes())
    }
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn write_arg(&self, out: &mut BytesMut) {
                let mut buf = itoa::Buffer::new();
                out.put_slice(buf.format(*self).as_bytes())
            }
        }
    )*};
}
int_arg!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

macro_rules! float_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn write_arg(&self, out: &mut BytesMut) {
                out.put_slice(crate::resp::format_double(f64::from(*self)).as_bytes())
            }
        }
    )*};
}
float_arg!(f32, f64);

#[cfg(test)]
mod tests {
    use super::*;

    fn arg<T: ToArg + ?Sized>(v: &T) -> Vec<u8> {
        let mut b = BytesMut::new();
        v.write_arg(&mut b);
        b.to_vec()
    }

    #[test]
    fn values_become_the_bytes_redis_expects() {
        assert_eq!(arg("abc"), b"abc");
        assert_eq!(arg(&String::from("x")), b"x");
        assert_eq!(arg(&-42i64), b"-42");
        assert_eq!(arg(&7u8), b"7");
        assert_eq!(arg(&1.5f64), b"1.5");
        assert_eq!(arg(&3.0f64), b"3");
        assert_eq!(arg(&f64::INFINITY), b"inf");
        assert_eq!(arg(&f64::NEG_INFINITY), b"-inf");
        assert_eq!(arg(&vec![0u8, 255]), vec![0u8, 255]);
        assert_eq!(arg(&Bytes::from_static(b"\r\n")), b"\r\n");
        assert_eq!(arg(&b"raw"[..]), b"raw");
        assert_eq!(arg(b"arr"), b"arr");
    }
}
