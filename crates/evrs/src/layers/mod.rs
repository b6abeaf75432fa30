//! Shared machinery of the layers built on an [`EventBase`](crate::EventBase) —
//! bufferevents and listeners keep their objects in the base (see `base/ext.rs`), named by
//! generational handles (`table.rs`).

pub(crate) mod table;
