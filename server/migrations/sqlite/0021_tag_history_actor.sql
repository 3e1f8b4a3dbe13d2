-- Who moved a tag (a push, `oc tag`, a rollback), shown in the console's tag history and on
-- an image's page. Empty for items written before, and for scheduled imports.
ALTER TABLE tag_history ADD COLUMN actor TEXT;
