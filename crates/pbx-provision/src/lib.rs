//! Phone auto-provisioning, sans-IO: what a phone asked for, whether it may have it, and the
//! rendered file.
//!
//! * [`path`]: request paths (`companyname/<file>`, `companyname@host/<file>`, bare file
//!   names) and the brand file names: Yealink `y0000000000XX.cfg` + `<mac>.cfg`, Polycom
//!   `<mac>.cfg` / `000000000000.cfg` → CONFIG_FILES `<mac>-phone.cfg, cloudpbx-common.cfg`,
//!   Snom `snom<model>.htm` + `snom<model>-<MAC>.htm`, Grandstream `cfg<mac>.xml`, Cisco
//!   `SEP<MAC>.cnf.xml`.
//! * [`resolve`](mod@resolve): tenant from the path, source on that tenant's whitelist (an empty
//!   whitelist provisions nothing), MAC owned by a desk phone of that tenant and of the
//!   file's brand. Refusals say whether they are security events.
//! * [`render`]: minijinja templates shipped in `templates/`, overridable per operator.
//! * [`seal`]: the sealed per-device provisioning password and the HTTPS URL token.
//! * [`locale`]: time zones and languages in each brand's spelling.
//!
//! The tokio glue (TFTP [`FileSource`](https://docs.rs/pbx-tftp), HTTPS listener, fetch log)
//! lives in `pbx-server::provisioning`.

pub mod locale;
pub mod path;
pub mod platform;
pub mod render;
pub mod resolve;
pub mod seal;

pub use locale::{LanguageSpellings, ZoneSpellings};
pub use path::{BrandFile, RequestPath};
pub use platform::{ManualSettings, Platform, Provisioner, TenantValues};
pub use render::{ConfigContext, ContextParts, LineContext, RenderError, Renderer, SipServer};
pub use resolve::{Refusal, Resolved, resolve};
pub use seal::{SealError, Sealer};

#[cfg(test)]
mod tests;
