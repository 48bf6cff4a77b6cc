//! LOLWUT [VERSION v] [...]: Redis' computer art, as 7.0.15 answers it. Without a version
//! (or with one Redis has no art for) it is `Redis ver. 7.0.15`; version 5 draws Georg Nees'
//! Schotter in braille (`[cols] [squares-per-row] [squares-per-col]`), version 6 a city
//! skyline in terminal grays (`[cols] [rows]`), both with Redis' random placement, sizes
//! and limits.

use bytes::Bytes;

use crate::resp::Value;

use super::args::{not_integer, parse_i64};
use super::call::{Call, Outcome};
use super::REDIS_VERSION;

/// glibc's `rand()`: 0..=RAND_MAX.
fn rand() -> i32 {
    (rand::random::<u32>() & 0x7fff_ffff) as i32
}

const RAND_MAX: f32 = 2_147_483_647.0;

/// A canvas of `width` x `height` pixels holding colours (Redis' `lwCanvas`).
struct Canvas {
    width: i32,
    height: i32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: i32, height: i32, color: u8) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![color; (width.max(0) * height.max(0)) as usize],
        }
    }

    fn set(&mut self, x: i32, y: i32, color: u8) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(x + y * self.width) as usize] = color;
        }
    }

    fn get(&self, x: i32, y: i32) -> u8 {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(x + y * self.width) as usize]
        } else {
            0
        }
    }

    /// Bresenham, as `lwDrawLine`.
    fn line(&mut self, mut x1: i32, mut y1: i32, x2: i32, y2: i32, color: u8) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let (sx, sy) = (if x1 < x2 { 1 } else { -1 }, if y1 < y2 { 1 } else { -1 });
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, color);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// `lwDrawSquare`: a square centred on x,y, rotated by `angle` (C's float/double mix).
    fn square(&mut self, x: i32, y: i32, size: f32, angle: f32, color: u8) {
        // Redis divides by this truncated literal, not by the exact square root of two.
        #[allow(clippy::approx_constant)]
        let size = (f64::from(size) / 1.4142135623) as f32;
        let size = f64::from(size).round() as f32;
        let mut k = (std::f64::consts::FRAC_PI_4 + f64::from(angle)) as f32;
        let (mut px, mut py) = ([0i32; 4], [0i32; 4]);
        for j in 0..4 {
            px[j] = (f64::from(k).sin() * f64::from(size) + f64::from(x)).round() as i32;
            py[j] = (f64::from(k).cos() * f64::from(size) + f64::from(y)).round() as i32;
            k = (f64::from(k) + std::f64::consts::FRAC_PI_2) as f32;
        }
        for j in 0..4 {
            self.line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4], color);
        }
    }
}

/// `lwDrawSchotter`.
fn schotter(cols: i32, per_row: i32, per_col: i32) -> Canvas {
    let width = cols * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32 + (padding * 2) as f32) as i32;
    let mut canvas = Canvas::new(width, height, 0);
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut angle = 0.0f32;
            if y > 1 {
                let r = || rand() as f32 / RAND_MAX / per_col as f32 * y as f32;
                let (mut r1, mut r2, mut r3) = (r(), r(), r());
                if rand() % 2 == 1 {
                    r1 = -r1;
                }
                if rand() % 2 == 1 {
                    r2 = -r2;
                }
                if rand() % 2 == 1 {
                    r3 = -r3;
                }
                angle = r1;
                sx = (sx as f32 + r2 * side / 3.0) as i32;
                sy = (sy as f32 + r3 * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle, 1);
        }
    }
    canvas
}

/// Version 5's rendering: 2x4 pixels per braille character.
fn braille(canvas: &Canvas) -> Vec<u8> {
    let mut text = Vec::new();
    for y in (0..canvas.height).step_by(4) {
        for x in (0..canvas.width).step_by(2) {
            let bits = [
                (x, y, 0),
                (x, y + 1, 1),
                (x, y + 2, 2),
                (x + 1, y, 3),
                (x + 1, y + 1, 4),
                (x + 1, y + 2, 5),
                (x, y + 3, 6),
                (x + 1, y + 3, 7),
            ];
            let byte = bits
                .iter()
                .filter(|(px, py, _)| canvas.get(*px, *py) != 0)
                .fold(0u32, |b, (_, _, bit)| b | (1 << bit));
            let code = 0x2800 + byte;
            text.extend_from_slice(&[
                0xE0 | (code >> 12) as u8,
                0x80 | ((code >> 6) & 0x3F) as u8,
                0x80 | (code & 0x3F) as u8,
            ]);
        }
        if y != canvas.height - 1 {
            text.push(b'\n');
        }
    }
    text
}

/// `generateSkyscraper`.
fn skyscraper(canvas: &mut Canvas, xoff: i32, width: i32, height: i32, windows: bool, color: u8) {
    let starty = canvas.height - 1;
    let endy = starty - height + 1;
    for y in (endy..=starty).rev() {
        for x in xoff..xoff + width {
            if y == endy && (x <= xoff + 1 || x >= xoff + width - 2) {
                continue;
            }
            let mut c = color;
            if windows && x > xoff + 1 && x < xoff + width - 2 && y > endy + 1 && y < starty - 1 {
                let relx = x - (xoff + 1);
                let rely = y - (endy + 1);
                if (relx / 2) % 2 != 0 && rely % 2 != 0 {
                    loop {
                        c = (1 + rand() % 2) as u8;
                        if c != color {
                            break;
                        }
                    }
                    if relx % 2 != 0 {
                        c = canvas.get(x - 1, y);
                    }
                }
            }
            canvas.set(x, y, c);
        }
    }
}

/// `generateSkyline`.
fn skyline(canvas: &mut Canvas) {
    let h = canvas.height;
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < canvas.width {
            offset += rand() % 8;
            let width = 10 + rand() % 9;
            let height = if color == 2 {
                h / 2 + (rand() % h) / 2
            } else {
                h / 2 + (rand() % h) / 3
            };
            skyscraper(canvas, offset, width, height, false, color);
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    let mut offset = -10;
    while offset < canvas.width {
        offset += rand() % 8;
        let mut width = 5 + rand() % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + (rand() % h) / 2;
        skyscraper(canvas, offset, width, height, true, 0);
        offset += width + 5;
    }
}

/// Version 6's rendering: one space per pixel on a terminal gray.
fn grays(canvas: &Canvas) -> Vec<u8> {
    let mut text = Vec::new();
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            let ce = match canvas.get(x, y) {
                1 => "0;90;100m",
                2 => "0;37;47m",
                3 => "0;97;107m",
                _ => "0;30;40m",
            };
            text.extend_from_slice(format!("\x1b[{ce} \x1b[0m").as_bytes());
        }
        if y != canvas.height - 1 {
            text.push(b'\n');
        }
    }
    text
}

/// The numeric options after the version: defaults, `None` for a non-integer.
fn options(args: &[Bytes], defaults: &[i64]) -> Option<Vec<i64>> {
    let mut out = defaults.to_vec();
    for (i, slot) in out.iter_mut().enumerate() {
        if let Some(a) = args.get(i + 1) {
            *slot = parse_i64(a)?;
        }
    }
    Some(out)
}

fn verbatim(text: Vec<u8>) -> Value {
    Value::Verbatim {
        format: Bytes::from_static(b"txt"),
        text: Bytes::from(text),
    }
}

/// The reply to LOLWUT `args`.
fn lolwut(args: &[Bytes]) -> Value {
    let mut args = args;
    let mut version = REDIS_VERSION.to_string();
    if args.len() >= 3 && args[1].eq_ignore_ascii_case(b"version") {
        let Some(v) = parse_i64(&args[2]) else {
            return not_integer();
        };
        version = format!("{}.0.0", v as u32);
        args = &args[2..];
    }
    let v = version.as_bytes();
    let art = |major: u8| {
        v[1] == b'.' && ((v[0] == major && v[2] != b'9') || (v[0] == major - 1 && v[2] == b'9'))
    };
    if art(b'5') {
        let Some(o) = options(args, &[66, 8, 12]) else {
            return not_integer();
        };
        let cols = o[0].clamp(1, 1000) as i32;
        let (per_row, per_col) = (o[1].clamp(1, 200) as i32, o[2].clamp(1, 200) as i32);
        let mut text = braille(&schotter(cols, per_row, per_col));
        text.extend_from_slice(
            format!(
                "\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {REDIS_VERSION}\n"
            )
            .as_bytes(),
        );
        return verbatim(text);
    }
    if art(b'6') {
        let Some(o) = options(args, &[80, 20]) else {
            return not_integer();
        };
        let (cols, rows) = (o[0].clamp(1, 1000) as i32, o[1].clamp(1, 1000) as i32);
        let mut canvas = Canvas::new(cols, rows, 3);
        skyline(&mut canvas);
        let mut text = grays(&canvas);
        text.extend_from_slice(
            format!(
                "\nDedicated to the 8 bit game developers of past and present.\n\
                 Original 8 bit image from Plaguemon by hikikomori. Redis ver. {REDIS_VERSION}\n"
            )
            .as_bytes(),
        );
        return verbatim(text);
    }
    verbatim(format!("Redis ver. {REDIS_VERSION}\n").into_bytes())
}

/// LOLWUT (registry entry).
pub(crate) fn lolwut_command(c: &mut Call<'_, '_>) -> Outcome {
    Outcome::Reply(lolwut(c.args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(args: &[&str]) -> String {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        match lolwut(&args) {
            Value::Verbatim { text, .. } => String::from_utf8(text.to_vec()).unwrap(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn versions_and_shapes() {
        assert_eq!(text(&["lolwut"]), "Redis ver. 7.0.15\n");
        assert_eq!(text(&["lolwut", "version"]), "Redis ver. 7.0.15\n");
        assert_eq!(text(&["lolwut", "version", "7"]), "Redis ver. 7.0.15\n");
        let five = text(&["lolwut", "version", "5", "10", "2", "3"]);
        assert!(five.ends_with("1968. Redis ver. 7.0.15\n"), "{five}");
        let six = text(&["lolwut", "VERSION", "6", "12", "5"]);
        assert_eq!(six.lines().filter(|l| l.contains('\x1b')).count(), 5);
        assert!(text(&["lolwut", "version", "x"]).contains("not an integer"));
    }
}
