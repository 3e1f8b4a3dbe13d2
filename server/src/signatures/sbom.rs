//! SBOMs: SPDX 2.x JSON documents (`packages[]`: `name`, `versionInfo`, a `purl` external
//! reference, `licenseConcluded`/`licenseDeclared`) and CycloneDX 1.4–1.6 JSON boms
//! (`components[]`, nested ones included: `name`, `version`, `type`, `purl`, `licenses`), read
//! into one package list. Every field may be missing; a document is read up to
//! [`MAX_SBOM_BYTES`].

use app::api::signatures::PackageRow;
use serde::Deserialize;

/// The largest SBOM read; a larger one is named, not parsed.
pub const MAX_SBOM_BYTES: u64 = 16 * 1024 * 1024;
/// Media and artifact types that say "SBOM".
pub const SBOM_TYPES: &[&str] = &[
    "application/spdx+json",
    "text/spdx+json",
    "application/vnd.cyclonedx+json",
    "application/vnd.cyclonedx",
    "text/spdx",
];

/// Whether a media or artifact type is an SBOM's.
pub fn is_sbom_type(media_type: &str) -> bool {
    let base = media_type.split(';').next().unwrap_or("").trim();
    SBOM_TYPES.contains(&base)
}

/// A document read: its format and version, its name and packages.
#[derive(Debug, PartialEq)]
pub struct Sbom {
    pub format: String,
    pub name: Option<String>,
    pub packages: Vec<PackageRow>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SbomError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("neither an SPDX (spdxVersion) nor a CycloneDX (bomFormat) JSON document")]
    UnknownFormat,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spdx {
    spdx_version: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    packages: Vec<SpdxPackage>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SpdxPackage {
    name: String,
    version_info: Option<String>,
    license_concluded: Option<String>,
    license_declared: Option<String>,
    external_refs: Vec<SpdxRef>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SpdxRef {
    reference_type: String,
    reference_locator: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CycloneDx {
    bom_format: String,
    #[serde(default)]
    spec_version: Option<String>,
    #[serde(default)]
    metadata: Option<CdxMetadata>,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CdxMetadata {
    component: Option<Component>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Component {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: String,
    version: Option<String>,
    purl: Option<String>,
    licenses: Vec<LicenseChoice>,
    components: Vec<Component>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LicenseChoice {
    license: Option<License>,
    expression: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct License {
    id: Option<String>,
    name: Option<String>,
}

/// Which format a document is, by its marker field.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Marker {
    #[serde(default)]
    spdx_version: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    bom_format: Option<serde::de::IgnoredAny>,
}

/// The type of a package URL (`pkg:npm/left-pad@1` is `npm`).
pub fn purl_type(purl: &str) -> Option<String> {
    let rest = purl.strip_prefix("pkg:")?;
    let kind = rest.split('/').next()?.trim_start_matches('/');
    (!kind.is_empty()).then(|| kind.to_ascii_lowercase())
}

/// SPDX's "nothing known" values shown as nothing.
fn known(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty() && t != "NOASSERTION" && t != "NONE")
}

/// Reads an SPDX or CycloneDX JSON document.
pub fn parse(bytes: &[u8]) -> Result<Sbom, SbomError> {
    let marker: Marker =
        serde_json::from_slice(bytes).map_err(|err| SbomError::NotJson(err.to_string()))?;
    if marker.spdx_version.is_some() {
        let doc: Spdx =
            serde_json::from_slice(bytes).map_err(|err| SbomError::NotJson(err.to_string()))?;
        return Ok(spdx(doc));
    }
    if marker.bom_format.is_some() {
        let doc: CycloneDx =
            serde_json::from_slice(bytes).map_err(|err| SbomError::NotJson(err.to_string()))?;
        if doc.bom_format != "CycloneDX" {
            return Err(SbomError::UnknownFormat);
        }
        return Ok(cyclonedx(doc));
    }
    Err(SbomError::UnknownFormat)
}

fn spdx(doc: Spdx) -> Sbom {
    let packages = doc
        .packages
        .into_iter()
        .map(|p| {
            let purl = p
                .external_refs
                .iter()
                .find(|r| r.reference_type == "purl")
                .map(|r| r.reference_locator.as_str());
            PackageRow {
                kind: purl.and_then(purl_type).unwrap_or_default(),
                name: p.name,
                version: known(p.version_info).unwrap_or_default(),
                licence: known(p.license_concluded)
                    .or(known(p.license_declared))
                    .unwrap_or_default(),
            }
        })
        .collect();
    Sbom {
        format: doc.spdx_version.replace("SPDX-", "SPDX "),
        name: doc.name,
        packages,
    }
}

fn cyclonedx(doc: CycloneDx) -> Sbom {
    let mut packages = Vec::new();
    // Depth first without recursion, so nesting costs no stack.
    let mut pending: Vec<Component> = doc.components.into_iter().rev().collect();
    while let Some(mut component) = pending.pop() {
        let nested = std::mem::take(&mut component.components);
        pending.extend(nested.into_iter().rev());
        let licence = component
            .licenses
            .into_iter()
            .filter_map(|choice| {
                choice
                    .expression
                    .or(choice.license.and_then(|l| l.id.or(l.name)))
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        packages.push(PackageRow {
            kind: component
                .purl
                .as_deref()
                .and_then(purl_type)
                .or(component.kind)
                .unwrap_or_default(),
            name: component.name,
            version: component.version.unwrap_or_default(),
            licence,
        });
    }
    Sbom {
        format: format!(
            "CycloneDX {}",
            doc.spec_version.unwrap_or_else(|| "(no version)".into())
        ),
        name: doc
            .metadata
            .and_then(|m| m.component)
            .map(|c| c.name)
            .filter(|n| !n.is_empty()),
        packages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spdx_packages_with_purl_types_and_licences() {
        let doc = br#"{"spdxVersion":"SPDX-2.3","name":"app","packages":[
            {"name":"openssl","versionInfo":"3.0.2","licenseConcluded":"NOASSERTION","licenseDeclared":"Apache-2.0",
             "externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:deb/debian/openssl@3.0.2"}]},
            {"name":"bare"}]}"#;
        let sbom = parse(doc).unwrap();
        assert_eq!(sbom.format, "SPDX 2.3");
        assert_eq!(sbom.name.as_deref(), Some("app"));
        assert_eq!(
            sbom.packages[0],
            PackageRow {
                name: "openssl".into(),
                version: "3.0.2".into(),
                kind: "deb".into(),
                licence: "Apache-2.0".into()
            }
        );
        assert_eq!(sbom.packages[1].name, "bare");
    }

    #[test]
    fn cyclonedx_components_nested_and_licence_forms() {
        let doc = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{"component":{"name":"img","type":"container"}},
            "components":[{"type":"library","name":"serde","version":"1.0.0","purl":"pkg:cargo/serde@1.0.0",
              "licenses":[{"license":{"id":"MIT"}},{"license":{"name":"Apache 2"}}],
              "components":[{"type":"library","name":"inner","licenses":[{"expression":"MIT OR Apache-2.0"}]}]},
             {"type":"framework","name":"nopurl"}]}"#;
        let sbom = parse(doc).unwrap();
        assert_eq!(sbom.format, "CycloneDX 1.5");
        assert_eq!(sbom.name.as_deref(), Some("img"));
        let names: Vec<_> = sbom.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["serde", "inner", "nopurl"]);
        assert_eq!(sbom.packages[0].kind, "cargo");
        assert_eq!(sbom.packages[0].licence, "MIT AND Apache 2");
        assert_eq!(sbom.packages[1].licence, "MIT OR Apache-2.0");
        assert_eq!(sbom.packages[2].kind, "framework");
    }

    #[test]
    fn hostile_documents_are_refused_not_panicked_on() {
        assert!(matches!(parse(b"\xff\xfe"), Err(SbomError::NotJson(_))));
        assert_eq!(parse(b"{}"), Err(SbomError::UnknownFormat));
        assert_eq!(
            parse(br#"{"bomFormat":"Other"}"#),
            Err(SbomError::UnknownFormat)
        );
        assert!(parse(br#"{"spdxVersion":"SPDX-2.3","packages":"x"}"#).is_err());
        // Deep nesting stops at serde_json's recursion limit with an error.
        let deep = format!(
            r#"{{"bomFormat":"CycloneDX","components":[{}]}}"#,
            r#"{"name":"x","components":["#.repeat(200) + &"]}".repeat(200)
        );
        assert!(parse(deep.as_bytes()).is_err());
        assert_eq!(purl_type("pkg:npm/%40scope/x@1").as_deref(), Some("npm"));
        assert_eq!(purl_type("npm/x"), None);
    }
}
