//! The syntax tree: an arena of definitions addressed by [`NodeId`], with a case-insensitive index
//! by scoped name, as Slice's own rules (redefinition, capitalization) require.

use std::collections::HashMap;

use crate::diag::Span;

/// Index of a node in [`Ast::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// Slice's builtin types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `byte`
    Byte,
    /// `bool`
    Bool,
    /// `short`
    Short,
    /// `int`
    Int,
    /// `long`
    Long,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `string`
    String,
    /// `Object` (by value: any class instance)
    Object,
    /// `Object*`
    ObjectProxy,
    /// `LocalObject`
    LocalObject,
    /// `Value`
    Value,
}

impl Builtin {
    /// The Slice spelling.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Byte => "byte",
            Builtin::Bool => "bool",
            Builtin::Short => "short",
            Builtin::Int => "int",
            Builtin::Long => "long",
            Builtin::Float => "float",
            Builtin::Double => "double",
            Builtin::String => "string",
            Builtin::Object => "Object",
            Builtin::ObjectProxy => "Object*",
            Builtin::LocalObject => "LocalObject",
            Builtin::Value => "Value",
        }
    }

    /// Whether the type is one of the integral types.
    pub fn is_integral(self) -> bool {
        matches!(
            self,
            Builtin::Byte | Builtin::Short | Builtin::Int | Builtin::Long
        )
    }
}

/// A type as used by a member, parameter, element or constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// A builtin type.
    Builtin(Builtin),
    /// A user type: struct, enum, sequence, dictionary, or a class/interface declaration (by value).
    Named(NodeId),
    /// A proxy to a class or interface (the id of its declaration).
    Proxy(NodeId),
}

/// The value of a constant or default: as written and as resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstValue {
    /// `true` or `false`.
    Bool(bool),
    /// Any integral literal.
    Int(i64),
    /// Any floating-point literal; the text keeps the literal as written.
    Float(f64, String),
    /// A string literal's value.
    Str(String),
    /// An enumerator.
    Enumerator(NodeId),
}

/// Operation modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No keyword.
    Normal,
    /// `idempotent`.
    Idempotent,
}

/// What a node is, with the data particular to its kind.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// `module M { … }`
    Module,
    /// A forward declaration (also created for every definition).
    ClassDecl {
        /// `interface` rather than `class`.
        interface: bool,
        /// The definition, once seen.
        definition: Option<NodeId>,
    },
    /// A class or interface definition.
    ClassDef {
        /// `interface` rather than `class`.
        interface: bool,
        /// Compact type id, or -1.
        compact_id: i32,
        /// Base class first (for classes), then implemented or extended interfaces: definitions.
        bases: Vec<NodeId>,
        /// The matching declaration.
        declaration: Option<NodeId>,
    },
    /// `exception E extends B { … }`
    Exception {
        /// The base exception.
        base: Option<NodeId>,
    },
    /// `struct S { … }`
    Struct,
    /// `sequence<T> S;`
    Sequence {
        /// Element type.
        element: Type,
        /// Metadata on the element type.
        element_metadata: Vec<String>,
    },
    /// `dictionary<K, V> D;`
    Dictionary {
        /// Key type.
        key: Type,
        /// Value type.
        value: Type,
    },
    /// `enum E { … }`
    Enum {
        /// Whether any enumerator has an explicit value.
        explicit_value: bool,
        /// Smallest value seen so far.
        min_value: i64,
        /// Largest value seen so far.
        max_value: i64,
        /// Value of the last enumerator.
        last_value: i64,
    },
    /// An enumerator of the enum that contains it.
    Enumerator {
        /// Its value.
        value: i64,
    },
    /// `const T NAME = value;`
    Const {
        /// Declared type.
        ty: Type,
        /// Resolved value.
        value: ConstValue,
        /// The value as written.
        literal: String,
    },
    /// A data member of a class, exception or struct.
    DataMember {
        /// Its type.
        ty: Type,
        /// Whether it is `optional(tag)`.
        optional: bool,
        /// The tag when optional.
        tag: i32,
        /// The default value, if any.
        default: Option<ConstValue>,
    },
    /// An operation of an interface or class.
    Operation {
        /// Return type; `None` for `void`.
        ret: Option<Type>,
        /// Whether the return is optional.
        ret_optional: bool,
        /// Its tag when optional.
        ret_tag: i32,
        /// `idempotent` or not.
        mode: Mode,
        /// Exceptions in the throws clause.
        throws: Vec<NodeId>,
    },
    /// A parameter of the operation that contains it.
    Param {
        /// Its type.
        ty: Type,
        /// `out`.
        out: bool,
        /// Whether it is `optional(tag)`.
        optional: bool,
        /// The tag when optional.
        tag: i32,
    },
}

/// A named definition.
#[derive(Debug, Clone)]
pub struct Node {
    /// Kind and kind-specific data.
    pub kind: NodeKind,
    /// Unscoped name.
    pub name: String,
    /// Scoped name, `::A::B`.
    pub scoped: String,
    /// Enclosing node; `None` at global scope.
    pub container: Option<NodeId>,
    /// Nodes defined inside, in order.
    pub contents: Vec<NodeId>,
    /// Where it was defined.
    pub span: Span,
    /// Doc comment.
    pub doc: Option<String>,
    /// Metadata directives (`["…"]`).
    pub metadata: Vec<String>,
    /// `local`.
    pub local: bool,
    /// Created only to let parsing go on after an error; never generated.
    pub dummy: bool,
    /// Whether it comes from the top-level file (not an included one).
    pub top_level: bool,
}

/// The whole compilation: every node, plus indexes.
#[derive(Debug, Clone, Default)]
pub struct Ast {
    /// The arena.
    pub nodes: Vec<Node>,
    /// Global-scope definitions, in order.
    pub roots: Vec<NodeId>,
    /// Lowercased scoped name → nodes with that name.
    pub content_map: HashMap<String, Vec<NodeId>>,
    /// Compact id → type id of the class that has it.
    pub compact_ids: HashMap<i32, String>,
    /// File metadata (`[["…"]]`) of each file, by file index.
    pub file_metadata: HashMap<usize, Vec<String>>,
}

impl Ast {
    /// The node with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// The node with this id, mutably.
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id.0]
    }

    /// Every node whose scoped name equals `scoped` ignoring case.
    pub fn find_contents(&self, scoped: &str) -> Vec<NodeId> {
        self.content_map
            .get(&scoped.to_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// The scoped name of the container, with a trailing `::` (`::` for global scope).
    pub fn this_scope(&self, container: Option<NodeId>) -> String {
        match container {
            None => "::".to_string(),
            Some(c) => format!("{}::", self.node(c).scoped),
        }
    }

    /// Adds a node, indexing it by scoped name.
    pub fn add(&mut self, container: Option<NodeId>, mut node: Node) -> NodeId {
        let id = NodeId(self.nodes.len());
        node.container = container;
        node.scoped = match container {
            None => format!("::{}", node.name),
            Some(c) => format!("{}::{}", self.node(c).scoped, node.name),
        };
        self.content_map
            .entry(node.scoped.to_lowercase())
            .or_default()
            .push(id);
        self.nodes.push(node);
        match container {
            None => self.roots.push(id),
            Some(c) => self.nodes[c.0].contents.push(id),
        }
        id
    }

    /// The contents of a container (global scope for `None`).
    pub fn contents(&self, container: Option<NodeId>) -> &[NodeId] {
        match container {
            None => &self.roots,
            Some(c) => &self.node(c).contents,
        }
    }

    /// "kind of" as Slice's messages say it.
    pub fn kind_of(&self, id: NodeId) -> &'static str {
        match &self.node(id).kind {
            NodeKind::Module => "module",
            NodeKind::ClassDecl { interface, .. } | NodeKind::ClassDef { interface, .. } => {
                if *interface {
                    "interface"
                } else {
                    "class"
                }
            }
            NodeKind::Exception { .. } => "exception",
            NodeKind::Struct => "struct",
            NodeKind::Sequence { .. } => "sequence",
            NodeKind::Dictionary { .. } => "dictionary",
            NodeKind::Enum { .. } => "enumeration",
            NodeKind::Enumerator { .. } => "enumerator",
            NodeKind::Const { .. } => "constant",
            NodeKind::DataMember { .. } => "data member",
            NodeKind::Operation { .. } => "operation",
            NodeKind::Param { .. } => "parameter",
        }
    }

    /// Whether the node can be used as a type (everything but modules, exceptions, members,
    /// operations, parameters, constants, enumerators and class definitions).
    pub fn is_type(&self, id: NodeId) -> bool {
        matches!(
            self.node(id).kind,
            NodeKind::ClassDecl { .. }
                | NodeKind::Struct
                | NodeKind::Sequence { .. }
                | NodeKind::Dictionary { .. }
                | NodeKind::Enum { .. }
        )
    }

    /// Whether a type is local.
    pub fn type_is_local(&self, ty: Type) -> bool {
        match ty {
            Type::Builtin(b) => b == Builtin::LocalObject,
            Type::Named(id) | Type::Proxy(id) => self.node(id).local,
        }
    }

    /// The definition of a class or interface, from its declaration or definition id.
    pub fn class_def(&self, id: NodeId) -> Option<NodeId> {
        match &self.node(id).kind {
            NodeKind::ClassDecl { definition, .. } => *definition,
            NodeKind::ClassDef { .. } => Some(id),
            _ => None,
        }
    }

    /// Whether a class declaration or definition is an interface.
    pub fn is_interface(&self, id: NodeId) -> bool {
        matches!(
            self.node(id).kind,
            NodeKind::ClassDecl {
                interface: true,
                ..
            } | NodeKind::ClassDef {
                interface: true,
                ..
            }
        )
    }

    /// Direct bases of a class definition.
    pub fn bases(&self, def: NodeId) -> &[NodeId] {
        match &self.node(def).kind {
            NodeKind::ClassDef { bases, .. } => bases,
            _ => &[],
        }
    }

    /// Every base of a class definition, transitively, without duplicates, depth-first.
    pub fn all_bases(&self, def: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack: Vec<NodeId> = self.bases(def).iter().rev().copied().collect();
        while let Some(b) = stack.pop() {
            if !out.contains(&b) {
                out.push(b);
                stack.extend(self.bases(b).iter().rev().copied());
            }
        }
        out
    }

    /// Nodes of a given kind among a container's contents.
    pub fn children(&self, id: NodeId, pred: impl Fn(&NodeKind) -> bool) -> Vec<NodeId> {
        self.node(id)
            .contents
            .iter()
            .copied()
            .filter(|c| pred(&self.node(*c).kind))
            .collect()
    }

    /// Data members of a class, struct or exception, in order.
    pub fn data_members(&self, id: NodeId) -> Vec<NodeId> {
        self.children(id, |k| matches!(k, NodeKind::DataMember { .. }))
    }

    /// Operations of a class or interface, in order.
    pub fn operations(&self, id: NodeId) -> Vec<NodeId> {
        self.children(id, |k| matches!(k, NodeKind::Operation { .. }))
    }

    /// Parameters of an operation, in order.
    pub fn params(&self, id: NodeId) -> Vec<NodeId> {
        self.children(id, |k| matches!(k, NodeKind::Param { .. }))
    }

    /// Operations of a class definition and all its bases.
    pub fn all_operations(&self, def: NodeId) -> Vec<NodeId> {
        let mut out = self.operations(def);
        for b in self.all_bases(def) {
            for op in self.operations(b) {
                if !out.iter().any(|o| self.node(*o).name == self.node(op).name) {
                    out.push(op);
                }
            }
        }
        out
    }

    /// Data members of a class definition and all its bases (base members first).
    pub fn all_data_members(&self, def: NodeId) -> Vec<NodeId> {
        let mut chain = Vec::new();
        let mut cur = Some(def);
        while let Some(c) = cur {
            chain.push(c);
            cur = self
                .bases(c)
                .first()
                .copied()
                .filter(|b| !self.is_interface(*b));
        }
        let mut out = Vec::new();
        for c in chain.into_iter().rev() {
            out.extend(self.data_members(c));
        }
        out
    }

    /// The base exception chain of an exception, nearest first.
    pub fn exception_bases(&self, ex: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut cur = ex;
        while let NodeKind::Exception { base: Some(b) } = self.node(cur).kind {
            if out.contains(&b) {
                break;
            }
            out.push(b);
            cur = b;
        }
        out
    }

    /// Enumerators of an enum, in order.
    pub fn enumerators(&self, id: NodeId) -> Vec<NodeId> {
        self.children(id, |k| matches!(k, NodeKind::Enumerator { .. }))
    }

    /// Whether a file-level metadata directive is set for the file.
    pub fn has_file_metadata(&self, file: usize, directive: &str) -> bool {
        self.file_metadata
            .get(&file)
            .is_some_and(|m| m.iter().any(|d| d == directive))
    }
}
