//! Every single-value encoding captured from Ice 3.7.8 (`vectors/out/marshal_vectors.json`):
//! decode, compare with the captured value, re-encode in 1.1 and 1.0, compare the bytes.

mod vectors_common;

use std::collections::HashMap;

use floe::Error;
use floe::encoding::{
    EncodingVersion, EndpointData, FormatType, InputStream, OutputStream, ProxyData, ProxyMode,
    SliceType, ValueRef,
};
use vectors_common::*;

floe::encoding::inventory::submit! { BASE }
floe::encoding::inventory::submit! { DERIVED }
floe::encoding::inventory::submit! { COMPACT }
floe::encoding::inventory::submit! { WITHOPT }

struct Row {
    op: String,
    value: String,
    encaps: Vec<u8>,
}

fn rows() -> Vec<(Row, Row)> {
    let json = fixture("marshal_vectors.json");
    let all: Vec<(String, Row)> = json
        .as_array()
        .expect("an array of rows")
        .iter()
        .map(|r| {
            let s = |k: &str| {
                r[k].as_str()
                    .unwrap_or_else(|| panic!("row without {k}"))
                    .to_string()
            };
            (
                s("encoding"),
                Row {
                    op: s("op"),
                    value: s("value"),
                    encaps: unhex(&s("encaps_hex")),
                },
            )
        })
        .collect();
    assert_eq!(all.len(), 220, "the fixture has 220 rows");
    let mut pairs = Vec::new();
    let mut it = all.into_iter();
    while let (Some((e11, r11)), Some((e10, r10))) = (it.next(), it.next()) {
        assert_eq!((e11.as_str(), e10.as_str()), ("1.1", "1.0"));
        assert_eq!((&r11.op, &r11.value), (&r10.op, &r10.value));
        pairs.push((r11, r10));
    }
    pairs
}

/// The checks of one pair of rows for a value type `T`.
struct Case<'r, T> {
    r11: &'r Row,
    r10: &'r Row,
    read: fn(&mut InputStream<'_>) -> Result<T, Error>,
    write: fn(&mut OutputStream, &T),
    show: fn(&T) -> String,
    format: FormatType,
    /// The value expected after the 1.0 round trip, when 1.0 loses part of it.
    expected_10: Option<String>,
}

impl<T> Case<'_, T> {
    fn run(self) {
        let what = format!("{} {}", self.r11.op, self.r11.value);
        let v11 = decode_encaps(&self.r11.encaps, self.read)
            .unwrap_or_else(|e| panic!("{what}: 1.1 decode failed: {e}"));
        assert_eq!(
            (self.show)(&v11),
            self.r11.value,
            "{what}: 1.1 decoded value"
        );
        let again = encode_encaps(EncodingVersion::V1_1, self.format, |os| {
            (self.write)(os, &v11)
        });
        assert_eq!(
            hex(&again),
            hex(&self.r11.encaps),
            "{what}: 1.1 re-encoding"
        );
        let as10 = encode_encaps(EncodingVersion::V1_0, self.format, |os| {
            (self.write)(os, &v11)
        });
        assert_eq!(
            hex(&as10),
            hex(&self.r10.encaps),
            "{what}: encoding the value in 1.0"
        );

        let v10 = decode_encaps(&self.r10.encaps, self.read)
            .unwrap_or_else(|e| panic!("{what}: 1.0 decode failed: {e}"));
        let expected = self.expected_10.unwrap_or_else(|| self.r10.value.clone());
        assert_eq!((self.show)(&v10), expected, "{what}: 1.0 decoded value");
        let again = encode_encaps(EncodingVersion::V1_0, self.format, |os| {
            (self.write)(os, &v10)
        });
        assert_eq!(
            hex(&again),
            hex(&self.r10.encaps),
            "{what}: 1.0 re-encoding"
        );
    }
}

fn case<'r, T: SliceType>(pair: &'r (Row, Row), show: fn(&T) -> String) -> Case<'r, T> {
    Case {
        r11: &pair.0,
        r10: &pair.1,
        read: |is| is.read::<T>(),
        write: |os, v| os.write(v),
        show,
        format: FormatType::Compact,
        expected_10: None,
    }
}

fn class_case(pair: &(Row, Row), format: FormatType) -> Case<'_, Option<ValueRef>> {
    Case {
        r11: &pair.0,
        r10: &pair.1,
        read: |is| {
            let v = is.read_value()?;
            is.read_pending_values()?;
            Ok(v)
        },
        write: |os, v| {
            os.write_value(v);
            os.write_pending_values();
        },
        show: py_value,
        format,
        expected_10: None,
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A proxy rendered as `proxy(<Ice's proxyToString>)`, enough for the captured proxies.
fn py_proxy(p: &Option<ProxyData>) -> String {
    let Some(p) = p else { return "None".into() };
    let mut s = p.identity.to_string();
    if !p.facet.is_empty() {
        s.push_str(&format!(" -f {}", p.facet));
    }
    s.push_str(match p.mode {
        ProxyMode::Twoway => " -t",
        ProxyMode::Oneway => " -o",
        ProxyMode::BatchOneway => " -O",
        ProxyMode::Datagram => " -d",
        ProxyMode::BatchDatagram => " -D",
    });
    if p.secure {
        s.push_str(" -s");
    }
    s.push_str(&format!(" -e {}", p.encoding));
    let timeout = |t: i32| {
        if t == -1 {
            "infinite".to_string()
        } else {
            t.to_string()
        }
    };
    for e in &p.endpoints {
        let text = match e {
            EndpointData::Tcp(t) | EndpointData::Ssl(t) => format!(
                "{} -h {} -p {} -t {}{}",
                if matches!(e, EndpointData::Tcp(_)) {
                    "tcp"
                } else {
                    "ssl"
                },
                t.host,
                t.port,
                timeout(t.timeout),
                if t.compress { " -z" } else { "" }
            ),
            EndpointData::Udp(u) => {
                format!(
                    "udp -h {} -p {}{}",
                    u.host,
                    u.port,
                    if u.compress { " -z" } else { "" }
                )
            }
            EndpointData::Ws(w) | EndpointData::Wss(w) => format!(
                "{} -h {} -p {} -t {}{} -r {}",
                if matches!(e, EndpointData::Ws(_)) {
                    "ws"
                } else {
                    "wss"
                },
                w.host,
                w.port,
                timeout(w.timeout),
                if w.compress { " -z" } else { "" },
                w.resource
            ),
            EndpointData::Opaque(o) => {
                format!(
                    "opaque -t {} -e {} -v {}",
                    o.endpoint_type,
                    o.encoding,
                    base64(&o.bytes)
                )
            }
        };
        s.push(':');
        s.push_str(&text);
    }
    if p.endpoints.is_empty() && !p.adapter_id.is_empty() {
        s.push_str(&format!(" @ {}", p.adapter_id));
    }
    format!("proxy({s})")
}

fn py_list<T>(v: &[T], f: impl Fn(&T) -> String) -> String {
    format!("[{}]", v.iter().map(f).collect::<Vec<_>>().join(", "))
}

/// Renders a dictionary in the order the entries appear in `order` (the captured order).
fn py_dict<K: std::hash::Hash + Eq, V>(
    d: &HashMap<K, V>,
    order: &[K],
    fk: impl Fn(&K) -> String,
    fv: impl Fn(&V) -> String,
) -> String {
    assert_eq!(d.len(), order.len());
    let items: Vec<String> = order
        .iter()
        .map(|k| format!("{}: {}", fk(k), fv(&d[k])))
        .collect();
    format!("{{{}}}", items.join(", "))
}

macro_rules! opt_case {
    ($pair:expr, $t:ty, $tag:expr, $show:expr) => {
        Case::<Option<$t>> {
            r11: &$pair.0,
            r10: &$pair.1,
            read: |is| is.read_tagged::<$t>($tag),
            write: |os, v| os.write_tagged($tag, v),
            show: |v| py_opt(v, $show),
            format: FormatType::Compact,
            expected_10: Some("Unset".into()),
        }
        .run()
    };
}

#[test]
fn every_captured_value_round_trips_in_both_encodings() {
    let pairs = rows();
    let mut done = 0;
    for pair in &pairs {
        let op = pair.0.op.as_str();
        match op {
            "pBool" => {
                case::<bool>(pair, |v| if *v { "True".into() } else { "False".into() }).run()
            }
            "pByte" => case::<u8>(pair, |v| v.to_string()).run(),
            "pShort" => case::<i16>(pair, |v| v.to_string()).run(),
            "pInt" => case::<i32>(pair, |v| v.to_string()).run(),
            "pLong" => case::<i64>(pair, |v| v.to_string()).run(),
            "pFloat" => case::<f32>(pair, |v| py_float(f64::from(*v))).run(),
            "pDouble" => case::<f64>(pair, |v| py_float(*v)).run(),
            "pString" => case::<String>(pair, |v| py_str(v)).run(),
            "pByteSeq" => case::<Vec<u8>>(pair, |v| py_bytes(v)).run(),
            "pIntSeq" => case::<Vec<i32>>(pair, |v| py_list(v, i32::to_string)).run(),
            "pStringSeq" => case::<Vec<String>>(pair, |v| py_list(v, |s| py_str(s))).run(),
            "pPointSeq" => case::<Vec<Point>>(pair, |v| py_list(v, Point::py)).run(),
            "pStrIntDict" => case::<HashMap<String, i32>>(pair, |d| {
                let mut keys: Vec<String> = d.keys().cloned().collect();
                keys.sort();
                py_dict(d, &keys, |k| py_str(k), i32::to_string)
            })
            .run(),
            "pIntPointDict" => case::<HashMap<i32, Point>>(pair, |d| {
                let mut keys: Vec<i32> = d.keys().copied().collect();
                keys.sort();
                py_dict(d, &keys, i32::to_string, Point::py)
            })
            .run(),
            "pColor" => case::<Color>(pair, Color::py).run(),
            "pBig" => case::<Big>(pair, Big::py).run(),
            "pHuge" => case::<Huge>(pair, Huge::py).run(),
            "pPoint" => case::<Point>(pair, Point::py).run(),
            "pPerson" => case::<Person>(pair, Person::py).run(),
            "pIdentity" => case::<floe::Identity>(pair, |i| {
                py_struct(
                    "Identity",
                    &[("name", py_str(&i.name)), ("category", py_str(&i.category))],
                )
            })
            .run(),
            "pContext" => case::<HashMap<String, String>>(pair, |d| {
                let mut keys: Vec<String> = d.keys().cloned().collect();
                keys.sort();
                py_dict(d, &keys, |k| py_str(k), |v| py_str(v))
            })
            .run(),
            "pProxy" => {
                let mut c = case::<Option<ProxyData>>(pair, py_proxy);
                c.expected_10 = Some(pair.1.value.replacen("-e 1.1", "-e 1.0", 1));
                c.run()
            }
            "pBase" | "pCompact" => class_case(pair, FormatType::Compact).run(),
            "pBaseSliced" => class_case(pair, FormatType::Sliced).run(),
            "pWithOpt" => {
                let mut c = class_case(pair, FormatType::Compact);
                if pair.0.value.contains("'s': \"'s'\"") {
                    c.expected_10 = Some(
                        "WithOpt{'a': '1', 's': 'Unset', 'i': 'Unset', 'p': 'Unset'}".to_string(),
                    );
                }
                c.run()
            }
            "pOptBool" => opt_case!(pair, bool, 1, |v| if *v {
                "True".into()
            } else {
                "False".into()
            }),
            "pOptByte" => opt_case!(pair, u8, 1, |v| v.to_string()),
            "pOptShort" => opt_case!(pair, i16, 1, |v| v.to_string()),
            "pOptInt" => opt_case!(pair, i32, 1, |v| v.to_string()),
            "pOptIntTag29" => opt_case!(pair, i32, 29, |v| v.to_string()),
            "pOptIntTag30" => opt_case!(pair, i32, 30, |v| v.to_string()),
            "pOptIntTag300" => opt_case!(pair, i32, 300, |v| v.to_string()),
            "pOptLong" => opt_case!(pair, i64, 1, |v| v.to_string()),
            "pOptFloat" => opt_case!(pair, f32, 1, |v| py_float(f64::from(*v))),
            "pOptDouble" => opt_case!(pair, f64, 1, |v| py_float(*v)),
            "pOptString" => opt_case!(pair, String, 1, |v| py_str(v)),
            "pOptColor" => opt_case!(pair, Color, 1, Color::py),
            "pOptPoint" => opt_case!(pair, Point, 1, Point::py),
            "pOptPerson" => opt_case!(pair, Person, 1, Person::py),
            "pOptByteSeq" => opt_case!(pair, Vec<u8>, 1, |v| py_bytes(v)),
            "pOptIntSeq" => opt_case!(pair, Vec<i32>, 1, |v| py_list(v, i32::to_string)),
            "pOptPointSeq" => opt_case!(pair, Vec<Point>, 1, |v| py_list(v, Point::py)),
            "pOptStringSeq" => opt_case!(pair, Vec<String>, 1, |v| py_list(v, |s| py_str(s))),
            "pOptStrIntDict" => opt_case!(pair, HashMap<String, i32>, 1, |d| {
                let mut keys: Vec<String> = d.keys().cloned().collect();
                keys.sort();
                py_dict(d, &keys, |k| py_str(k), i32::to_string)
            }),
            "pOptIntPointDict" => opt_case!(pair, HashMap<i32, Point>, 1, |d| {
                let mut keys: Vec<i32> = d.keys().copied().collect();
                keys.sort();
                py_dict(d, &keys, i32::to_string, Point::py)
            }),
            "pOptProxy" => {
                // A set optional holding a null proxy is "None"; an unset one is "Unset".
                Case::<Option<Option<ProxyData>>> {
                    r11: &pair.0,
                    r10: &pair.1,
                    read: |is| is.read_tagged::<Option<ProxyData>>(1),
                    write: |os, v| os.write_tagged(1, v),
                    show: |v| py_opt(v, py_proxy),
                    format: FormatType::Compact,
                    expected_10: Some("Unset".into()),
                }
                .run()
            }
            "pOptBase" => Case::<Option<Option<ValueRef>>> {
                r11: &pair.0,
                r10: &pair.1,
                read: |is| is.read_tagged::<Option<ValueRef>>(1),
                write: |os, v| os.write_tagged(1, v),
                show: |v| py_opt(v, py_value),
                format: FormatType::Compact,
                expected_10: Some("Unset".into()),
            }
            .run(),
            "pReqAndOpts" => Case::<(i32, Option<i32>, Option<String>)> {
                r11: &pair.0,
                r10: &pair.1,
                read: |is| {
                    let a = is.read::<i32>()?;
                    let b = is.read_tagged::<String>(1)?;
                    let c = is.read_tagged::<i32>(3)?;
                    Ok((a, c, b))
                },
                write: |os, (a, c, b)| {
                    os.write(a);
                    os.write_tagged(1, b);
                    os.write_tagged(3, c);
                },
                show: |(a, c, b)| {
                    format!(
                        "[{a}, {}, {}]",
                        py_opt(c, i32::to_string),
                        py_opt(b, |s| py_str(s))
                    )
                },
                format: FormatType::Compact,
                expected_10: Some("[1, Unset, Unset]".into()),
            }
            .run(),
            other => panic!("no test for {other}"),
        }
        done += 1;
    }
    assert_eq!(done, 110);
}

#[test]
fn optional_str_and_slice_parameters_encode_like_owned_ones() {
    // Generated code passes optionals as Option<&T>, strings as &str and sequences as &[T].
    let owned = encode_encaps(EncodingVersion::V1_1, FormatType::Compact, |os| {
        os.write_tagged(1, &Some("abc".to_string()));
        os.write_tagged(2, &Some(vec![1i32, 2]));
    });
    let borrowed = encode_encaps(EncodingVersion::V1_1, FormatType::Compact, |os| {
        os.write_tagged_ref::<str>(1, Some("abc"));
        os.write_tagged_ref::<[i32]>(2, Some(&[1, 2][..]));
    });
    assert_eq!(hex(&owned), hex(&borrowed));
    assert_eq!(hex(&owned), "1600000001010d036162631509020100000002000000");
}
