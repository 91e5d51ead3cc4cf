//! Pins the public API of wsproto, so that changing it is a deliberate act.
//!
//! Generates rustdoc JSON for the library (default features, hidden items
//! included and marked), lists every public item with its kind and, for
//! functions, its signature, and compares the sorted list with the
//! checked-in `tests/public-api.txt`. On a difference it fails with a diff;
//! rerun with `UPDATE_PUBLIC_API=1` to accept the new surface:
//!
//! ```text
//! UPDATE_PUBLIC_API=1 cargo test -p wsproto --test public_api
//! ```
//!
//! Rustdoc JSON is unstable; `RUSTC_BOOTSTRAP=1` unlocks it on a stable
//! toolchain. Its format can change with the toolchain, so after a
//! toolchain update the file may need regenerating too.
//!
//! The nested cargo uses its own target directory (`public-api` under the
//! target directory) so that it does not wait for the lock held by the
//! cargo running this test.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

#[test]
fn public_api_matches_the_checked_in_list() {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../target"))
        .join("public-api");
    let status = Command::new(env!("CARGO"))
        .current_dir(&manifest_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTDOCFLAGS")
        .args([
            "rustdoc",
            "-p",
            "wsproto",
            "--lib",
            "--quiet",
            "--target-dir",
        ])
        .arg(&target)
        .args([
            "--",
            "-Z",
            "unstable-options",
            "--output-format",
            "json",
            "--document-hidden-items",
            "--cap-lints",
            "allow",
        ])
        .status()
        .expect("run cargo rustdoc");
    assert!(status.success(), "cargo rustdoc failed: {status}");
    let json = std::fs::read_to_string(target.join("doc/wsproto.json")).expect("read rustdoc JSON");
    let krate: Value = serde_json::from_str(&json).expect("parse rustdoc JSON");

    let mut lines: Vec<String> = Surface::new(&krate).lines().into_iter().collect();
    lines.sort();
    let actual = lines.join("\n") + "\n";

    let file = manifest_dir.join("tests/public-api.txt");
    if std::env::var_os("UPDATE_PUBLIC_API").is_some() {
        std::fs::write(&file, &actual).expect("write tests/public-api.txt");
        return;
    }
    let expected = std::fs::read_to_string(&file).unwrap_or_default();
    if expected != actual {
        let old: BTreeSet<&str> = expected.lines().collect();
        let new: BTreeSet<&str> = actual.lines().collect();
        let mut diff = String::new();
        for line in old.difference(&new) {
            diff += &format!("- {line}\n");
        }
        for line in new.difference(&old) {
            diff += &format!("+ {line}\n");
        }
        panic!(
            "the public API of wsproto changed (- removed, + added):\n{diff}\n\
             If this is intended, rerun with UPDATE_PUBLIC_API=1 to accept it:\n  \
             UPDATE_PUBLIC_API=1 cargo test -p wsproto --test public_api\n\
             and commit wsproto/tests/public-api.txt."
        );
    }
}

/// Auto traits whose implementation is part of a type's contract; others
/// (`Freeze`, `UnsafeUnpin`, ...) are unstable and vary with the toolchain.
const STABLE_AUTO_TRAITS: &[&str] = &["Send", "Sync", "Unpin", "UnwindSafe", "RefUnwindSafe"];

/// Compiler-internal traits that derives implement; not API.
const INTERNAL_TRAITS: &[&str] = &["StructuralPartialEq", "TrivialClone"];

/// Walks the crate from its root through public modules and re-exports.
struct Surface<'a> {
    index: &'a serde_json::Map<String, Value>,
    root: String,
    /// Every public path of each item, by id.
    paths: HashMap<String, BTreeSet<String>>,
}

impl<'a> Surface<'a> {
    fn new(krate: &'a Value) -> Surface<'a> {
        let mut s = Surface {
            index: krate["index"].as_object().expect("index"),
            root: id(&krate["root"]),
            paths: HashMap::new(),
        };
        let root = s.root.clone();
        s.walk(&root, "wsproto");
        s
    }

    fn item(&self, id: &str) -> Option<&'a Value> {
        self.index.get(id)
    }

    /// Record `id` at `path`, and everything public inside it if a module.
    fn walk(&mut self, id: &str, path: &str) {
        let Some(item) = self.item(id) else { return };
        if !self
            .paths
            .entry(id.to_owned())
            .or_default()
            .insert(path.to_owned())
        {
            return;
        }
        if let Some(module) = item["inner"].get("module") {
            for child in module["items"].as_array().into_iter().flatten() {
                let child = self::id(child);
                let Some(c) = self.item(&child) else { continue };
                if let Some(u) = c["inner"].get("use") {
                    let name = u["name"].as_str().unwrap_or_default();
                    let target = self::id(&u["id"]);
                    if u["is_glob"].as_bool() == Some(true) {
                        if let Some(m) = self.item(&target).and_then(|t| t["inner"].get("module")) {
                            for grandchild in m["items"].as_array().into_iter().flatten() {
                                let g = self::id(grandchild);
                                if let Some(gname) = self.item(&g).and_then(|i| i["name"].as_str())
                                {
                                    self.walk(&g, &format!("{path}::{gname}"));
                                }
                            }
                        }
                    } else if self.item(&target).is_some() {
                        self.walk(&target, &format!("{path}::{name}"));
                    } else {
                        // A re-export of another crate's item: record the
                        // `use` itself.
                        self.paths
                            .entry(child.clone())
                            .or_default()
                            .insert(format!("{path}::{name}"));
                    }
                } else if let Some(name) = c["name"].as_str() {
                    self.walk(&child, &format!("{path}::{name}"));
                }
            }
        }
    }

    /// The shortest public path of `id`: where its members are listed.
    fn canonical(&self, id: &str) -> Option<&str> {
        self.paths
            .get(id)?
            .iter()
            .min_by_key(|p| (p.matches("::").count(), p.as_str()))
            .map(String::as_str)
    }

    fn lines(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (id, paths) in &self.paths {
            let item = &self.index[id];
            let (kind, inner) = kind(item);
            for path in paths {
                let line = match kind {
                    "use" => format!(
                        "reexport {path} = {}",
                        inner["source"].as_str().unwrap_or_default()
                    ),
                    "function" => format!("fn {path}{}", signature(inner)),
                    "module" if id == &self.root => format!("crate {path}"),
                    "module" => format!("mod {path}"),
                    "constant" => format!("const {path}: {}", ty(&inner["type"])),
                    "static" => format!("static {path}: {}", ty(&inner["type"])),
                    "type_alias" => format!(
                        "type {path}{} = {}",
                        generics(&inner["generics"]),
                        ty(&inner["type"])
                    ),
                    "struct" | "enum" | "union" | "trait" => {
                        format!("{kind} {path}{}", generics(&inner["generics"]))
                    }
                    other => format!("{other} {path}"),
                };
                out.insert(line + &marks(item));
            }
            if let Some(path) = self.canonical(id) {
                self.members(&self.index[id]["id"], kind, inner, path, &mut out);
            }
        }
        out
    }

    /// Fields, variants, inherent associated items and trait impls of the
    /// item at its canonical `path`.
    fn members(
        &self,
        id_value: &Value,
        kind: &str,
        inner: &Value,
        path: &str,
        out: &mut BTreeSet<String>,
    ) {
        match kind {
            "struct" => {
                let k = &inner["kind"];
                if let Some(plain) = k.get("plain") {
                    self.fields(&plain["fields"], path, out);
                    if plain["has_stripped_fields"].as_bool() == Some(true) {
                        out.insert(format!("struct {path} has private fields"));
                    }
                } else if let Some(tuple) = k.get("tuple") {
                    for (i, f) in tuple.as_array().into_iter().flatten().enumerate() {
                        match f {
                            Value::Null => {
                                out.insert(format!("struct {path} has private fields"));
                            }
                            f => {
                                let field = &self.index[&id(f)];
                                out.insert(format!(
                                    "field {path}::{i}: {}{}",
                                    ty(&field["inner"]["struct_field"]),
                                    marks(field)
                                ));
                            }
                        }
                    }
                }
            }
            "enum" => {
                for v in inner["variants"].as_array().into_iter().flatten() {
                    let variant = &self.index[&id(v)];
                    let vpath = format!("{path}::{}", variant["name"].as_str().unwrap_or_default());
                    out.insert(format!("variant {vpath}{}", marks(variant)));
                    let vk = &variant["inner"]["variant"]["kind"];
                    if let Some(s) = vk.get("struct") {
                        self.fields(&s["fields"], &vpath, out);
                    } else if let Some(t) = vk.get("tuple") {
                        let types: Vec<String> = t
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|f| match f {
                                Value::Null => "_".to_owned(),
                                f => ty(&self.index[&id(f)]["inner"]["struct_field"]),
                            })
                            .collect();
                        out.insert(format!("variant {vpath}({})", types.join(", ")));
                    }
                }
            }
            "trait" => {
                for i in inner["items"].as_array().into_iter().flatten() {
                    self.assoc(&self.index[&id(i)], path, out);
                }
            }
            _ => return,
        }
        for imp in inner["impls"].as_array().into_iter().flatten() {
            let imp = &self.index[&id(imp)];
            let i = &imp["inner"]["impl"];
            if !i["blanket_impl"].is_null() {
                continue;
            }
            match i.get("trait").filter(|t| !t.is_null()) {
                None => {
                    for a in i["items"].as_array().into_iter().flatten() {
                        if let Some(a) = self.item(&id(a)) {
                            if a["visibility"] == "public" {
                                self.assoc(a, path, out);
                            }
                        }
                    }
                }
                Some(t) => {
                    let name = path_ty(t);
                    let synthetic = i["is_synthetic"].as_bool() == Some(true);
                    if synthetic && !STABLE_AUTO_TRAITS.contains(&name.as_str()) {
                        continue;
                    }
                    if INTERNAL_TRAITS.contains(&name.as_str()) {
                        continue;
                    }
                    let neg = if i["is_negative"].as_bool() == Some(true) {
                        "!"
                    } else {
                        ""
                    };
                    let auto = if synthetic { "auto " } else { "" };
                    // The implementing type by its public path when it is
                    // this item, so that equal short names cannot collide.
                    let for_ty = match i["for"].get("resolved_path") {
                        Some(r) if r["id"] == *id_value => {
                            format!("{path}{}", generic_args(&r["args"]))
                        }
                        _ => ty(&i["for"]),
                    };
                    out.insert(format!("{auto}impl {neg}{name} for {for_ty}{}", marks(imp)));
                }
            }
        }
    }

    fn fields(&self, fields: &Value, path: &str, out: &mut BTreeSet<String>) {
        for f in fields.as_array().into_iter().flatten() {
            let field = &self.index[&id(f)];
            out.insert(format!(
                "field {path}::{}: {}{}",
                field["name"].as_str().unwrap_or_default(),
                ty(&field["inner"]["struct_field"]),
                marks(field)
            ));
        }
    }

    /// An associated function, constant or type.
    fn assoc(&self, a: &Value, path: &str, out: &mut BTreeSet<String>) {
        let name = a["name"].as_str().unwrap_or_default();
        let (kind, inner) = kind(a);
        let line = match kind {
            "function" => {
                let takes_self = inner["sig"]["inputs"][0][0] == "self";
                let k = if takes_self { "method" } else { "assoc_fn" };
                format!("{k} {path}::{name}{}", signature(inner))
            }
            "assoc_const" => format!("assoc_const {path}::{name}: {}", ty(&inner["type"])),
            "assoc_type" => format!("assoc_type {path}::{name}"),
            other => format!("{other} {path}::{name}"),
        };
        out.insert(line + &marks(a));
    }
}

fn id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn kind(item: &Value) -> (&str, &Value) {
    let (k, v) = item["inner"]
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("inner");
    (k.as_str(), v)
}

/// Attributes that are part of the contract.
fn marks(item: &Value) -> String {
    let mut s = String::new();
    for a in item["attrs"].as_array().into_iter().flatten() {
        let text = a.to_string();
        if text.contains("non_exhaustive") {
            s += " #[non_exhaustive]";
        } else if text.contains("doc(hidden)") {
            s += " #[doc(hidden)]";
        }
    }
    if !item["deprecation"].is_null() {
        s += " #[deprecated]";
    }
    s
}

/// `<generics>(inputs) -> output where ...` of a function.
fn signature(f: &Value) -> String {
    let sig = &f["sig"];
    let inputs: Vec<String> = sig["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let (name, t) = (p[0].as_str().unwrap_or("_"), &p[1]);
            if name == "self" {
                match t.get("borrowed_ref") {
                    Some(r) if r["type"]["generic"] == "Self" => {
                        let m = if r["is_mutable"].as_bool() == Some(true) {
                            "mut "
                        } else {
                            ""
                        };
                        format!("&{m}self")
                    }
                    _ if t["generic"] == "Self" => "self".to_owned(),
                    _ => format!("self: {}", ty(t)),
                }
            } else {
                format!("{name}: {}", ty(t))
            }
        })
        .collect();
    let header = &f["header"];
    let mut pre = String::new();
    if header["is_const"].as_bool() == Some(true) {
        pre += "const ";
    }
    if header["is_unsafe"].as_bool() == Some(true) {
        pre += "unsafe ";
    }
    let out = match &sig["output"] {
        Value::Null => String::new(),
        t => format!(" -> {}", ty(t)),
    };
    let pre = if pre.is_empty() {
        String::new()
    } else {
        format!(" [{}]", pre.trim_end())
    };
    format!(
        "{}({}){out}{}{pre}",
        generics(&f["generics"]),
        inputs.join(", "),
        where_clause(&f["generics"])
    )
}

fn generics(g: &Value) -> String {
    let params: Vec<String> = g["params"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p["name"].as_str().unwrap_or_default();
            let k = &p["kind"];
            if let Some(t) = k.get("type") {
                if t["is_synthetic"].as_bool() == Some(true) {
                    return None;
                }
                let b = bounds(&t["bounds"]);
                Some(if b.is_empty() {
                    name.to_owned()
                } else {
                    format!("{name}: {b}")
                })
            } else if let Some(c) = k.get("const") {
                Some(format!("const {name}: {}", ty(&c["type"])))
            } else {
                Some(name.to_owned())
            }
        })
        .collect();
    if params.is_empty() {
        String::new()
    } else {
        format!("<{}>", params.join(", "))
    }
}

fn where_clause(g: &Value) -> String {
    let preds: Vec<String> = g["where_predicates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let b = p.get("bound_predicate")?;
            Some(format!("{}: {}", ty(&b["type"]), bounds(&b["bounds"])))
        })
        .collect();
    if preds.is_empty() {
        String::new()
    } else {
        format!(" where {}", preds.join(", "))
    }
}

fn bounds(b: &Value) -> String {
    let parts: Vec<String> = b
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            if let Some(t) = b.get("trait_bound") {
                let m = if t["modifier"] == "maybe" { "?" } else { "" };
                format!("{m}{}", path_ty(&t["trait"]))
            } else if let Some(l) = b.get("outlives") {
                l.as_str().unwrap_or_default().to_owned()
            } else {
                b.to_string()
            }
        })
        .collect();
    parts.join(" + ")
}

/// A path's last segment and its generic arguments: `Result<WebSocket<S>>`.
fn path_ty(p: &Value) -> String {
    let name = p["path"].as_str().unwrap_or_default();
    let name = name.rsplit("::").next().unwrap_or(name);
    format!("{name}{}", generic_args(&p["args"]))
}

fn generic_args(a: &Value) -> String {
    if let Some(ab) = a.get("angle_bracketed") {
        let mut parts: Vec<String> = ab["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|arg| {
                if let Some(t) = arg.get("type") {
                    ty(t)
                } else if let Some(l) = arg.get("lifetime") {
                    l.as_str().unwrap_or_default().to_owned()
                } else if let Some(c) = arg.get("const") {
                    c["expr"].as_str().unwrap_or("_").to_owned()
                } else {
                    "_".to_owned()
                }
            })
            .collect();
        for c in ab["constraints"].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or_default();
            let b = &c["binding"];
            if let Some(t) = b.get("equality").and_then(|e| e.get("type")) {
                parts.push(format!("{name} = {}", ty(t)));
            } else if let Some(bs) = b.get("constraint") {
                parts.push(format!("{name}: {}", bounds(bs)));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("<{}>", parts.join(", "))
        }
    } else if let Some(p) = a.get("parenthesized") {
        let inputs: Vec<String> = p["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(ty)
            .collect();
        let out = match &p["output"] {
            Value::Null => String::new(),
            t => format!(" -> {}", ty(t)),
        };
        format!("({}){out}", inputs.join(", "))
    } else {
        String::new()
    }
}

/// A type, as Rust spells it (paths shortened to their last segment).
fn ty(t: &Value) -> String {
    let Some((k, v)) = t.as_object().and_then(|o| o.iter().next()) else {
        return t.to_string();
    };
    match k.as_str() {
        "resolved_path" => path_ty(v),
        "generic" | "primitive" => v.as_str().unwrap_or_default().to_owned(),
        "borrowed_ref" => {
            let l = v["lifetime"]
                .as_str()
                .map(|l| format!("{l} "))
                .unwrap_or_default();
            let m = if v["is_mutable"].as_bool() == Some(true) {
                "mut "
            } else {
                ""
            };
            format!("&{l}{m}{}", ty(&v["type"]))
        }
        "raw_pointer" => {
            let m = if v["is_mutable"].as_bool() == Some(true) {
                "mut"
            } else {
                "const"
            };
            format!("*{m} {}", ty(&v["type"]))
        }
        "slice" => format!("[{}]", ty(v)),
        "array" => format!("[{}; {}]", ty(&v["type"]), v["len"].as_str().unwrap_or("_")),
        "tuple" => {
            let parts: Vec<String> = v.as_array().into_iter().flatten().map(ty).collect();
            format!("({})", parts.join(", "))
        }
        "impl_trait" => format!("impl {}", bounds(v)),
        "dyn_trait" => {
            let parts: Vec<String> = v["traits"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| path_ty(&p["trait"]))
                .chain(v["lifetime"].as_str().map(str::to_owned))
                .collect();
            format!("dyn {}", parts.join(" + "))
        }
        "qualified_path" => {
            let tr = match &v["trait"] {
                Value::Null => String::new(),
                tr => format!(" as {}", path_ty(tr)),
            };
            format!(
                "<{}{tr}>::{}",
                ty(&v["self_type"]),
                v["name"].as_str().unwrap_or_default()
            )
        }
        "function_pointer" => {
            let sig = &v["sig"];
            let inputs: Vec<String> = sig["inputs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| ty(&p[1]))
                .collect();
            let out = match &sig["output"] {
                Value::Null => String::new(),
                t => format!(" -> {}", ty(t)),
            };
            format!("fn({}){out}", inputs.join(", "))
        }
        "infer" => "_".to_owned(),
        _ => t.to_string(),
    }
}
