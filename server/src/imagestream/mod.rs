//! Image streams: the registry's content as OpenShift's `image.openshift.io/v1` resources.
//! Namespaces hold image streams; repository `ns/stream` is stream `stream` in namespace `ns`.

pub mod image;
