//! Redis 7.0's geohash for the geo commands: 52-bit interleaved scores, cell neighbours,
//! haversine distance on a 6372797.560856 m sphere, search shapes (radius or box) and the
//! step estimated from a radius, so areas and results equal redis-server's.
pub(super) const LAT_MIN: f64 = -85.051_128_78;
pub(super) const LAT_MAX: f64 = 85.051_128_78;
pub(super) const LON_MIN: f64 = -180.0;
pub(super) const LON_MAX: f64 = 180.0;
pub(super) const STEP_MAX: u8 = 26;
pub(super) const EARTH_RADIUS: f64 = 6_372_797.560_856;
pub(super) const MERCATOR_MAX: f64 = 20_037_726.37;
pub(super) const D_R: f64 = std::f64::consts::PI / 180.0;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Hash {
    pub(super) bits: u64,
    pub(super) step: u8,
}

pub(super) fn interleave(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (u64::from(xlo), u64::from(ylo));
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

pub(super) fn deinterleave(v: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
        0x0000_0000_FFFF_FFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (v, v >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// `geohashEncode` over the given ranges.
pub(super) fn encode_in(
    lon_r: (f64, f64),
    lat_r: (f64, f64),
    lon: f64,
    lat: f64,
    step: u8,
) -> Hash {
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Hash { bits: 0, step };
    }
    let lat_off = (lat - lat_r.0) / (lat_r.1 - lat_r.0) * (1u64 << step) as f64;
    let lon_off = (lon - lon_r.0) / (lon_r.1 - lon_r.0) * (1u64 << step) as f64;
    Hash {
        bits: interleave(lat_off as u32, lon_off as u32),
        step,
    }
}

pub(super) fn encode(lon: f64, lat: f64, step: u8) -> Hash {
    encode_in((LON_MIN, LON_MAX), (LAT_MIN, LAT_MAX), lon, lat, step)
}

/// Cell bounds: (lon_min, lon_max, lat_min, lat_max).
pub(super) fn decode_area(h: Hash) -> (f64, f64, f64, f64) {
    let sep = deinterleave(h.bits);
    let (ilat, ilon) = (f64::from(sep as u32), f64::from((sep >> 32) as u32));
    let div = (1u64 << h.step) as f64;
    let (lat_s, lon_s) = (LAT_MAX - LAT_MIN, LON_MAX - LON_MIN);
    (
        LON_MIN + (ilon * 1.0 / div) * lon_s,
        LON_MIN + ((ilon + 1.0) * 1.0 / div) * lon_s,
        LAT_MIN + (ilat * 1.0 / div) * lat_s,
        LAT_MIN + ((ilat + 1.0) * 1.0 / div) * lat_s,
    )
}

/// The longitude/latitude a stored score stands for (its cell's centre).
pub(super) fn decode_score(score: f64) -> (f64, f64) {
    let h = Hash {
        bits: score as u64,
        step: STEP_MAX,
    };
    let (x0, x1, y0, y1) = decode_area(h);
    (
        ((x0 + x1) / 2.0).clamp(LON_MIN, LON_MAX),
        ((y0 + y1) / 2.0).clamp(LAT_MIN, LAT_MAX),
    )
}

pub(super) fn align52(h: Hash) -> u64 {
    h.bits << (52 - u32::from(h.step) * 2)
}

pub(super) fn move_x(h: &mut Hash, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> (64 - u32::from(h.step) * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaa_aaaa_aaaa_aaaa >> (64 - u32::from(h.step) * 2);
    h.bits = x | y;
}

pub(super) fn move_y(h: &mut Hash, d: i8) {
    if d == 0 {
        return;
    }
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - u32::from(h.step) * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555 >> (64 - u32::from(h.step) * 2);
    h.bits = x | y;
}

pub(super) fn moved(h: Hash, dx: i8, dy: i8) -> Hash {
    let mut n = h;
    move_x(&mut n, dx);
    move_y(&mut n, dy);
    n
}

pub(super) fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS * (lat2 * D_R - lat1 * D_R).abs()
}

pub(super) fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (lon1 * D_R, lon2 * D_R);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (lat1 * D_R, lat2 * D_R);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS * a.sqrt().asin()
}

/// A search shape: centre, and radius or box (in the unit), with the unit's metres.
#[derive(Clone, Copy, Debug)]
pub(super) struct Shape {
    pub(super) lon: f64,
    pub(super) lat: f64,
    pub(super) conv: f64,
    /// `Ok(radius)` or `Err((width, height))`.
    pub(super) size: Result<f64, (f64, f64)>,
}

impl Shape {
    /// The distance to `(x, y)` when inside the shape.
    pub(super) fn contains(&self, x: f64, y: f64) -> Option<f64> {
        match self.size {
            Ok(r) => {
                let d = distance(self.lon, self.lat, x, y);
                (d <= r * self.conv).then_some(d)
            }
            Err((w, h)) => {
                if lat_distance(y, self.lat) > h * self.conv / 2.0 {
                    return None;
                }
                if distance(x, y, self.lon, y) > w * self.conv / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, x, y))
            }
        }
    }

    /// `geohashBoundingBox`: (min_lon, min_lat, max_lon, max_lat).
    pub(super) fn bounds(&self) -> (f64, f64, f64, f64) {
        let (h, w) = match self.size {
            Ok(r) => (r * self.conv, r * self.conv),
            Err((w, h)) => (self.conv * h / 2.0, self.conv * w / 2.0),
        };
        let lat_delta = (h / EARTH_RADIUS) / D_R;
        let top = (w / EARTH_RADIUS / ((self.lat + lat_delta) * D_R).cos()) / D_R;
        let bottom = (w / EARTH_RADIUS / ((self.lat - lat_delta) * D_R).cos()) / D_R;
        let south = self.lat < 0.0;
        let d = if south { bottom } else { top };
        (
            self.lon - d,
            self.lat - lat_delta,
            self.lon + d,
            self.lat + lat_delta,
        )
    }

    /// The 9 cells to scan (zeroed ones skipped), as `geohashCalculateAreasByShapeWGS84`.
    pub(super) fn cells(&self) -> [Option<Hash>; 9] {
        let (min_lon, min_lat, max_lon, max_lat) = self.bounds();
        let radius = match self.size {
            Ok(r) => r,
            Err((w, h)) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        } * self.conv;
        let mut steps = estimate_steps(radius, self.lat);
        let mut hash = encode(self.lon, self.lat, steps);
        let n = moved(hash, 0, 1);
        let s = moved(hash, 0, -1);
        let e = moved(hash, 1, 0);
        let w = moved(hash, -1, 0);
        let decrease = decode_area(n).3 < max_lat
            || decode_area(s).2 > min_lat
            || decode_area(e).1 < max_lon
            || decode_area(w).0 > min_lon;
        if steps > 1 && decrease {
            steps -= 1;
            hash = encode(self.lon, self.lat, steps);
        }
        let area = decode_area(hash);
        // Order: centre, N, S, E, W, NE, NW, SE, SW.
        let mut cells = [
            Some(hash),
            Some(moved(hash, 0, 1)),
            Some(moved(hash, 0, -1)),
            Some(moved(hash, 1, 0)),
            Some(moved(hash, -1, 0)),
            Some(moved(hash, 1, 1)),
            Some(moved(hash, -1, 1)),
            Some(moved(hash, 1, -1)),
            Some(moved(hash, -1, -1)),
        ];
        if steps >= 2 {
            let mut zero = |idx: &[usize]| idx.iter().for_each(|&i| cells[i] = None);
            if area.2 < min_lat {
                zero(&[2, 8, 7]);
            }
            if area.3 > max_lat {
                zero(&[1, 5, 6]);
            }
            if area.0 < min_lon {
                zero(&[4, 8, 6]);
            }
            if area.1 > max_lon {
                zero(&[3, 7, 5]);
            }
        }
        cells
    }
}

pub(super) fn estimate_steps(mut range: f64, lat: f64) -> u8 {
    if range == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}
