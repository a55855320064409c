//! The iovec's element layout under random operation sequences, against a plain model:
//! `add`/`addn`/`set`/`del`/`consume`/`concat`/`get` on the Lua object must keep exactly the
//! bytes and element boundaries of a `Vec<Vec<u8>>`, `writev(fd, offset, nbyte)` must send
//! exactly the selected bytes, and `recvmsg` must write in place without changing the layout.

use mlua::{Lua, Value};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Add(Vec<u8>),
    AddN(usize),
    Set(Vec<u8>, usize),
    Del(usize),
    Consume(i64),
    Concat(i64, Option<i64>),
    Get(usize),
    Writev(usize, usize),
    RecvInPlace(Vec<u8>),
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![Just(0u8), Just(b'a'), any::<u8>()], 0..40)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => bytes().prop_map(Op::Add),
        1 => (1usize..50).prop_map(Op::AddN),
        1 => (bytes(), 0usize..8).prop_map(|(b, i)| Op::Set(b, i)),
        1 => (0usize..8).prop_map(Op::Del),
        1 => (-3i64..120).prop_map(Op::Consume),
        2 => (-3i64..120, proptest::option::of(-3i64..120)).prop_map(|(o, n)| Op::Concat(o, n)),
        1 => (0usize..8).prop_map(Op::Get),
        2 => (0usize..100, 0usize..100).prop_map(|(o, n)| Op::Writev(o, n)),
        1 => proptest::collection::vec(any::<u8>(), 1..60).prop_map(Op::RecvInPlace),
    ]
}

fn concat(model: &[Vec<u8>]) -> Vec<u8> {
    model.concat()
}

fn run(lua: &Lua, ops: &[Op]) -> Result<(), TestCaseError> {
    lua.load(
        "ll = require('llsocket'); iov = ll.iovec.new()
         pair = ll.socket.pair(ll.SOCK_DGRAM, 0, true)",
    )
    .exec()
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let g = lua.globals();
    let call = |code: &str, args: mlua::MultiValue| -> Result<mlua::MultiValue, TestCaseError> {
        lua.load(code)
            .call::<mlua::MultiValue>(args)
            .map_err(|e| TestCaseError::fail(format!("{code}: {e}")))
    };
    let s = |b: &[u8]| Value::String(lua.create_string(b).unwrap());
    let int = |i: i64| Value::Integer(i);
    let one = |v: Value| mlua::MultiValue::from_vec(vec![v]);
    let as_bytes = |v: &Value| match v {
        Value::String(x) => Some(x.as_bytes().to_vec()),
        _ => None,
    };
    let mut model: Vec<Vec<u8>> = Vec::new();
    for op in ops {
        match op {
            Op::Add(b) => {
                let r = call("return iov:add(...)", one(s(b)))?;
                if b.is_empty() {
                    prop_assert_eq!(r.front().and_then(|v| v.as_i64()), Some(-3));
                } else {
                    model.push(b.clone());
                    prop_assert_eq!(r.front().and_then(|v| v.as_i64()), Some(model.len() as i64));
                }
            }
            Op::AddN(n) => {
                call("return iov:addn(...)", one(int(*n as i64)))?;
                model.push(vec![b' '; *n]);
            }
            Op::Set(b, i) => {
                let r = call(
                    "return iov:set(...)",
                    mlua::MultiValue::from_vec(vec![s(b), int(*i as i64)]),
                )?;
                let ok = *i >= 1 && *i <= model.len();
                prop_assert_eq!(r.front().and_then(|v| v.as_boolean()), Some(ok));
                if ok {
                    model[*i - 1] = b.clone();
                }
            }
            Op::Del(i) => {
                let r = call("return iov:del(...)", one(int(*i as i64)))?;
                if *i >= 1 && *i <= model.len() {
                    let gone = model.remove(*i - 1);
                    prop_assert_eq!(r.front().and_then(as_bytes), Some(gone));
                } else {
                    prop_assert!(matches!(r.front(), Some(Value::Nil)));
                }
            }
            Op::Consume(n) => {
                call("return iov:consume(...)", one(int(*n)))?;
                if *n > 0 {
                    let mut n = *n as usize;
                    while n > 0 && !model.is_empty() {
                        if n >= model[0].len() {
                            n -= model[0].len();
                            model.remove(0);
                        } else {
                            model[0].drain(..n);
                            n = 0;
                        }
                    }
                }
            }
            Op::Concat(o, n) => {
                let args = match n {
                    Some(n) => mlua::MultiValue::from_vec(vec![int(*o), int(*n)]),
                    None => one(int(*o)),
                };
                let r = call("return iov:concat(...)", args)?;
                let all = concat(&model);
                let from = (*o).max(0) as usize;
                let len = n.map_or(all.len(), |n| n.max(0) as usize);
                let want: Vec<u8> = all.iter().skip(from).take(len).copied().collect();
                prop_assert_eq!(r.front().and_then(as_bytes), Some(want));
            }
            Op::Get(i) => {
                let r = call("return iov:get(...)", one(int(*i as i64)))?;
                let want = (*i >= 1 && *i <= model.len()).then(|| model[*i - 1].clone());
                prop_assert_eq!(r.front().and_then(as_bytes), want);
            }
            Op::Writev(o, n) => {
                let r = call(
                    "local n = iov:writev(pair[1]:fd(), ...)
                     local got = pair[2]:recv(65536)
                     return n, got",
                    mlua::MultiValue::from_vec(vec![int(*o as i64), int(*n as i64)]),
                )?;
                let all = concat(&model);
                let want: Vec<u8> = all
                    .iter()
                    .skip(*o)
                    .take(if *n == 0 { usize::MAX } else { *n })
                    .copied()
                    .collect();
                let v: Vec<Value> = r.into_iter().collect();
                prop_assert_eq!(v.first().and_then(|x| x.as_i64()), Some(want.len() as i64));
                // a zero-length datagram is received as ""
                prop_assert_eq!(v.get(1).and_then(as_bytes), Some(want));
            }
            Op::RecvInPlace(b) => {
                let r = call(
                    "local mh = ll.msghdr.new(); mh:iov(iov)
                     pair[2]:send(...)
                     local n = pair[1]:recvmsg(mh)
                     if n == nil then pair[1]:recv(65536) end
                     return n",
                    one(s(b)),
                )?;
                let total: usize = model.iter().map(Vec::len).sum();
                if total == 0 {
                    continue; // no iov bytes: nothing is written (the datagram is drained)
                }
                let n = b.len().min(total);
                prop_assert_eq!(r.front().and_then(|v| v.as_i64()), Some(n as i64));
                let mut left = &b[..n];
                for e in model.iter_mut() {
                    let k = left.len().min(e.len());
                    e[..k].copy_from_slice(&left[..k]);
                    left = &left[k..];
                }
            }
        }
        let r = call(
            "return iov:bytes(), #iov, iov:concat()",
            mlua::MultiValue::new(),
        )?;
        let v: Vec<Value> = r.into_iter().collect();
        prop_assert_eq!(
            v[0].as_i64(),
            Some(model.iter().map(Vec::len).sum::<usize>() as i64)
        );
        prop_assert_eq!(v[1].as_i64(), Some(model.len() as i64));
        prop_assert_eq!(as_bytes(&v[2]), Some(concat(&model)));
    }
    drop(g);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn iovec_layout_follows_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let lua = Lua::new();
        llsocket::preload(&lua).unwrap();
        run(&lua, &ops)?;
    }
}
