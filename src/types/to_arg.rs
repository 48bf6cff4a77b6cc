//! [`ToArg`]: one Rust value as one command argument.

use bytes::{BufMut, Bytes, BytesMut};

/// A value that can be sent as one command argument.
///
/// Integers and floats are sent as their decimal text (floats in the shortest form that reads
/// back to the same number, `inf`/`-inf` as Redis spells them); strings and bytes as they are.
/// `Vec<u8>`, `&[u8]` and `[u8; N]` are one binary argument.
///
/// Implement it for a type of your own by appending its bytes; [`BytesMut`] is re-exported
/// here (`redcluster::BytesMut`), so no `bytes` dependency is needed:
///
/// ```
/// use redcluster::{BytesMut, ToArg};
/// struct UserId(u32);
/// impl ToArg for UserId {
///     fn write_arg(&self, out: &mut BytesMut) {
///         out.extend_from_slice(format!("user:{}", self.0).as_bytes());
///     }
/// }
/// ```
///
/// A list is several arguments, not one: `.arg(&keys)` with a `Vec<String>` does not compile
/// and the error points to `.args(&keys)`, which appends each element.
///
/// ```compile_fail
/// # async fn f(client: redcluster::Client) -> redcluster::Result<()> {
/// let keys = vec!["a".to_string(), "b".to_string()];
/// let n: i64 = client.cmd("DEL").arg(&keys).query().await?; // use .args(&keys)
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not one command argument",
    label = "not a single argument",
    note = "a list (a `Vec`, slice or array of strings or numbers) is several arguments: \
            use `.args(..)` instead of `.arg(..)`",
    note = "bytes (`Vec<u8>`, `&[u8]`, `Bytes`) are one binary argument; a type of your own \
            implements `ToArg` by appending its bytes to the `BytesMut` it is given"
)]
pub trait ToArg {
    /// Append this value's bytes to `out` (no framing: the caller writes the length).
    fn write_arg(&self, out: &mut BytesMut);

    /// Like [`write_arg`](ToArg::write_arg), for values whose encoding can fail
    /// (`Json<T>` of a value serde cannot serialize): the command then fails with this error
    /// before anything is sent.
    #[doc(hidden)]
    fn try_write_arg(&self, out: &mut BytesMut) -> Result<(), crate::Error> {
        self.write_arg(out);
        Ok(())
    }
}

impl<T: ToArg + ?Sized> ToArg for &T {
    fn write_arg(&self, out: &mut BytesMut) {
        (**self).write_arg(out)
    }

    fn try_write_arg(&self, out: &mut BytesMut) -> Result<(), crate::Error> {
        (**self).try_write_arg(out)
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
