//! Identity: who is calling (`authenticate`), what they may do (`permission`), and the keys
//! automation calls with (`api_key`). Every route goes through `authenticate`; the public
//! webhooks are marked public in the one table of operations.

pub mod api_key;
mod audit;
mod authenticate;
pub mod permission;

pub use authenticate::{authenticate, Principal};
pub use permission::{access, Access, Permission, Role, OPERATIONS};
