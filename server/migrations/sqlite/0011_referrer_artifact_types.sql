-- The referrers API lists an image manifest that has no `artifactType` under its config's media
-- type (OCI Distribution 1.1). Manifests stored before that rule kept none when the config was
-- a plain image config: they get their config's media type now.
UPDATE manifests
SET artifact_type = json_extract(CAST(content AS TEXT), '$.config.mediaType')
WHERE artifact_type IS NULL
  AND media_type IN (
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.v2+json'
  )
  AND json_valid(CAST(content AS TEXT));
