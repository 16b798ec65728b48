//! Encoding 1.0 sends class instances after the parameters only when a required parameter (or
//! a required return value) carries classes: Ice's `sendsClasses(false)` and
//! `returnsClasses(false)`. Optional parameters are not sent in 1.0, so an operation whose only
//! class parameters are optional has no pending instances (ZeroC's Ice/optional test sends
//! `sendOptionalClass(bool, optional(1) OneOptional)` in 1.0 and expects exactly that).

use floe_slice::{Options, check, generate::generate};

const SLICE: &str = r#"
module M
{
    class C { int i; }
    sequence<C> CSeq;
    interface I
    {
        void onlyOptional(bool req, optional(1) C o);
        void required(C c);
        void requiredInSeq(CSeq s, optional(2) C o);
        optional(1) C optionalReturn(out optional(2) C o);
        C requiredReturn();
        void requiredOut(out C c, out optional(1) C o);
    }
}
"#;

/// The generated text of one operation's proxy method, from `pub async fn NAME(` to the next
/// `pub async fn` or, for the last one, the servant trait.
fn proxy_method<'a>(code: &'a str, name: &str) -> &'a str {
    let start = code
        .find(&format!("pub async fn {name}("))
        .unwrap_or_else(|| panic!("no proxy method {name}"));
    let rest = &code[start + 1..];
    let end = ["pub async fn ", "pub trait "]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()
        .map_or(code.len(), |e| start + 1 + e);
    &code[start..end]
}

#[test]
fn pending_instances_follow_required_class_parameters_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("Pending.ice");
    std::fs::write(&file, SLICE).expect("write Pending.ice");
    let checked = check(&file, &Options::default());
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let code = generate(&checked, &file).expect("generation succeeds");

    // (operation, pending instances after the request, pending instances after the reply)
    for (op, request, reply) in [
        ("only_optional", false, false),
        ("required", true, false),
        ("required_in_seq", true, false),
        ("optional_return", false, false),
        ("required_return", false, true),
        ("required_out", false, true),
    ] {
        let m = proxy_method(&code, op);
        assert_eq!(
            m.contains("write_pending_values"),
            request,
            "{op}: request pending instances\n{m}"
        );
        assert_eq!(
            m.contains("read_pending_values"),
            reply,
            "{op}: reply pending instances\n{m}"
        );
    }
}
