//! The `cmsgpack` and `struct` Lua libraries on the bundled cluster against a real
//! redis-server 7.0: the same scripts, the same reply bytes (packed bytes, unpacked values
//! through `tostring`, and the error wording), in RESP2 and RESP3.

mod support;

use redcluster::server::TestCluster;
use support::raw::Client;
use support::real_cluster::RealCluster;

/// Lua snippets run with `EVAL <snippet> 0`.
const CASES: &[&str] = &[
    // cmsgpack.pack: every integer width at its edges, floats, strings, tables.
    "return cmsgpack.pack(0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296)",
    "return cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649)",
    "return cmsgpack.pack(2^53, -2^53, 2^63, -2^63, 2^64, 1e300, -1e300)",
    "return cmsgpack.pack(1.5, 0.1, -0.25, 1/0, -1/0, 3.4028234663852886e38, 1e-45)",
    "return cmsgpack.pack(0/0) ~= nil",
    "return cmsgpack.pack('', 'a', string.rep('x', 31), string.rep('y', 32))",
    "return cmsgpack.pack(string.rep('z', 255), string.rep('w', 256))",
    "return #cmsgpack.pack(string.rep('v', 65535)) .. ' ' .. #cmsgpack.pack(string.rep('v', 65536))",
    "return cmsgpack.pack(true, false, nil, {}, {1, 2, 3}, {a = 1})",
    "return cmsgpack.pack({1, 2, nil, 4}, {[1] = 1, [3] = 3}, {[0] = 'z'}, {[1.5] = 1})",
    "return cmsgpack.pack({x = {y = {z = {1, 2, {true}}}}})",
    "local t = {} for i = 1, 20 do t[i] = i end return cmsgpack.pack(t)",
    "local t = {} for i = 1, 70000 do t[i] = i % 7 end return #cmsgpack.pack(t)",
    "local t = {} for i = 1, 20 do t['k' .. i] = i end return #cmsgpack.pack(t)",
    "local t = {} t[1] = t return cmsgpack.pack(t)",
    "local t = {} local c = t for i = 1, 20 do c[1] = {} c = c[1] end return cmsgpack.pack(t)",
    "return cmsgpack.pack(print, cjson.null)",
    "return cmsgpack.pack()",
    // cmsgpack.unpack and friends.
    "local a, b, c = cmsgpack.unpack(cmsgpack.pack(1, 'two', 3.5)) return {a, b, tostring(c)}",
    "return {cmsgpack.unpack(cmsgpack.pack({1, 2, {3, 'x'}}))}",
    "local t = cmsgpack.unpack(cmsgpack.pack({a = 1, b = {c = 'd'}})) return {t.a, t.b.c}",
    "return tostring(cmsgpack.unpack(cmsgpack.pack(0.1)))",
    "return tostring(cmsgpack.unpack(cmsgpack.pack(-2^63)))",
    "return tostring(cmsgpack.unpack('\\203\\255\\255\\255\\255\\255\\255\\255\\255'))",
    "return tostring(cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255'))",
    "return {cmsgpack.unpack('\\208\\128\\209\\128\\0\\210\\128\\0\\0\\0\\211\\255\\255\\255\\255\\255\\255\\255\\254')}",
    "return {cmsgpack.unpack('\\192\\194\\195\\1')}",
    "return cmsgpack.unpack('')",
    "return cmsgpack.unpack('\\205\\1')",
    "return cmsgpack.unpack('\\193')",
    "return cmsgpack.unpack('\\196\\1a')",
    "return cmsgpack.unpack('\\217\\5ab')",
    "return cmsgpack.unpack('\\129\\192\\1')",
    "return cmsgpack.unpack('\\145')",
    "return cmsgpack.unpack()",
    "return cmsgpack.unpack({})",
    "return cmsgpack.unpack(12)",
    "local s = string.rep('\\1', 9000) return select('#', cmsgpack.unpack(s))",
    "local s = string.rep('\\1', 7990) return select('#', cmsgpack.unpack(s))",
    "local s = string.rep('\\145', 5000) .. '\\1' return type(cmsgpack.unpack(s))",
    "local s = string.rep('\\145', 3990) .. '\\1' return type(cmsgpack.unpack(s))",
    "local s = string.rep('\\129\\1', 3000) .. '\\1' return type(cmsgpack.unpack(s))",
    "local s = string.rep('\\129\\1', 7000) .. '\\1' return type(cmsgpack.unpack(s))",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_one(s)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_one(s, 2)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_one(s, 3)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_one(s, 4)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_one(s, -1)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_limit(s, 2)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_limit(s, 0)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_limit(s, 5, 1)}",
    "local s = cmsgpack.pack(1, 2, 3) return {cmsgpack.unpack_limit(s, -2)}",
    "return {cmsgpack.unpack_limit('x')}",
    "return {cmsgpack.unpack_one(nil, 'x')}",
    "return {cmsgpack._NAME, cmsgpack._VERSION, cmsgpack._COPYRIGHT, cmsgpack._DESCRIPTION}",
    // struct.pack: widths, signs, endianness, alignment, strings.
    "return struct.pack('bBhHlLT', -1, 255, -2, 65534, -3, 4, 5)",
    "return struct.pack('>bBhHlLT', -1, 255, -2, 65534, -3, 4, 5)",
    "return struct.pack('i', -7) .. struct.pack('I', 7) .. struct.pack('i2I3i8I1', 1, 2, -3, 4)",
    "return struct.pack('>i12', -1) .. struct.pack('<I16', 258)",
    "return struct.pack('i33', 1)",
    "return struct.pack('i99999999999', 1)",
    "return struct.pack('<fd', 1.5, -0.1) .. struct.pack('>fd', 3.25, 1e300)",
    "return struct.pack('!bd', 1, 2) .. struct.pack('!4bd', 1, 2) .. struct.pack('!2bi', 1, 2)",
    "return struct.pack('!3b', 1)",
    "return struct.pack('xbxxb', 1, 2)",
    "return struct.pack('s', 'abc') .. struct.pack('c2', 'xyz') .. struct.pack('c0', 'hello')",
    "return struct.pack('c5', 'ab')",
    "return struct.pack('s', {})",
    "return struct.pack('b')",
    "return struct.pack('b', 'x')",
    "return struct.pack('b', '12')",
    "return struct.pack('=b', 1)",
    "return struct.pack('z', 1)",
    "return struct.pack(' b b ', 1, 2)",
    "return struct.pack()",
    "return struct.pack(12, 1)",
    "return struct.pack('B', 300) .. struct.pack('b', -300) .. struct.pack('H', 1e10)",
    // struct.unpack and struct.size.
    "return {struct.unpack('bBhH', struct.pack('bBhH', -1, 255, -2, 65534))}",
    "return {struct.unpack('>iI', struct.pack('>iI', -5, 5))}",
    "return {struct.unpack('i3I3', struct.pack('i3I3', -5, 16777215))}",
    "local a, b, n = struct.unpack('<fd', struct.pack('<fd', 1.5, -0.1)) return {tostring(a), tostring(b), n}",
    "return {struct.unpack('s', 'abc\\0def\\0')}",
    "return {struct.unpack('ss', 'abc\\0def')}",
    "return {struct.unpack('bc0', '\\3abcdef')}",
    "return {struct.unpack('c0', 'abc')}",
    "return {struct.unpack('c2xc1', 'abcdef')}",
    "return {struct.unpack('b', 'abc', 2)}",
    "return {struct.unpack('b', 'abc', 0)}",
    "return {struct.unpack('b', 'abc', -1)}",
    "return {struct.unpack('', 'abc', 10)}",
    "return {struct.unpack('b', 'abc', 4)}",
    "return {struct.unpack('i', 'ab')}",
    "return {struct.unpack('!i', 'abcdefgh', 2)}",
    "return {struct.unpack('z', 'abc')}",
    "return {struct.unpack('b')}",
    "return {struct.unpack('b', 'abc', 'x')}",
    "return {struct.unpack('>i16', string.rep('\\255', 16))}",
    "return select('#', struct.unpack(string.rep('b', 8100), string.rep('a', 8100)))",
    "return {struct.size('bhilT'), struct.size('!bhilT'), struct.size('!2bd'), struct.size('c7')}",
    "return struct.size('s')",
    "return struct.size('c0')",
    "return struct.size('bzq')",
    "return struct.size('b?')",
    "return struct.size('!5')",
];

#[tokio::test]
async fn cmsgpack_and_struct_reply_like_redis_server() {
    let Some(real) = RealCluster::single() else {
        return;
    };
    let ours = TestCluster::builder().primaries(1).start().await.unwrap();
    let mut r = Client::connect(real.nodes[0].addr()).await;
    let mut o = Client::connect(ours.seeds()[0]).await;
    let mut mismatches = Vec::new();
    for resp3 in [false, true] {
        if resp3 {
            r.cmd(&["HELLO", "3"]).await;
            o.cmd(&["HELLO", "3"]).await;
        }
        for case in CASES {
            let want = r.cmd_raw(&["EVAL", case, "0"]).await;
            let got = o.cmd_raw(&["EVAL", case, "0"]).await;
            if want != got {
                mismatches.push(format!(
                    "resp3={resp3} {case}\n  redis-server: {:?}\n  bundled:      {:?}",
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
