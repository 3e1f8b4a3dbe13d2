#!/usr/bin/env python3
"""Merges the console's small WASM chunks into a few larger files (after `cargo leptos build
--split`; scripts/build runs it).

wasm-split gives every set of lazy islands that share code a chunk of its own, with no minimum
size, so one page fetched 30 files of 100 bytes to 2 KB each. On loopback the page was then
slower than the single-bundle console: the responses crowd out the stylesheet and the main
module. This step puts the chunks into disjoint groups, merges each group into one module with
binaryen's wasm-merge, and rewrites what names them: `__wasm_split.js` (which loads a module's
chunks before it), the split manifest (which the server reads to preload a page's modules), the
main JS and main module (which import `__wasm_split.js`) and `hash.txt` (which gives the server
the hashed names).

Groups must not overlap: a chunk's data segments write statics, so it may be instantiated only
once per page, and `__wasm_split.js` loads each group at most once. A group may hold chunks that
an island does not need; grouping trades those bytes against files (see `group_chunks`).

A chunk is a module of its own: it imports the main module's memory, function table and a global
from `__wasm_split`, and places its functions at fixed table slots. Merging N of them directly
would import each of those N times, so a small module (the "shim") imports them once, under
another module name, and the chunks' imports resolve to it. The merged module's imports are then
renamed back to `__wasm_split`.

Usage: scripts/merge_wasm_chunks.py [--max-files N] SITE_PKG_DIR HASH_FILE
Run twice, it does nothing the second time (the manifest then has no unmerged chunks to group).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# The features the Rust WASM target emits; wasm-merge and wasm-opt validate against them.
FEATURES = [
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-mutable-globals",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
]
SPLIT_MODULE = "__wasm_split"
SHIM_IMPORT_MODULE = "__berth_shim"


class MergeError(Exception):
    pass


# --- WASM binary: just enough to read and rename a module's imports --------------------------


def read_leb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def name_bytes(name: str) -> bytes:
    raw = name.encode()
    return leb(len(raw)) + raw


def sections(data: bytes):
    """(id, payload) for each section of a module."""
    if data[:8] != b"\0asm\1\0\0\0":
        raise MergeError("not a WASM module (version 1)")
    pos = 8
    while pos < len(data):
        section_id = data[pos]
        size, pos = read_leb(data, pos + 1)
        yield section_id, data[pos : pos + size]
        pos += size


def module_bytes(parts) -> bytes:
    return b"\0asm\1\0\0\0" + b"".join(
        bytes([section_id]) + leb(len(payload)) + payload for section_id, payload in parts
    )


def skip_limits(data: bytes, pos: int) -> int:
    flags, pos = read_leb(data, pos)
    _, pos = read_leb(data, pos)
    if flags & 1:
        _, pos = read_leb(data, pos)
    return pos


def imports(payload: bytes) -> list[tuple[str, str, int, bytes]]:
    """(module, field, kind, descriptor bytes) for each import of an import section."""
    count, pos = read_leb(payload, 0)
    entries = []
    for _ in range(count):
        names = []
        for _ in range(2):
            length, pos = read_leb(payload, pos)
            names.append(payload[pos : pos + length].decode())
            pos += length
        kind = payload[pos]
        start = pos = pos + 1
        if kind == 0:  # function: type index
            _, pos = read_leb(payload, pos)
        elif kind == 1:  # table: element type, limits
            pos = skip_limits(payload, pos + 1)
        elif kind == 2:  # memory: limits
            pos = skip_limits(payload, pos)
        elif kind == 3:  # global: value type, mutability
            pos += 2
        else:
            raise MergeError(f"import of kind {kind} is not supported")
        entries.append((names[0], names[1], kind, payload[start:pos]))
    return entries


def import_section(entries) -> bytes:
    return leb(len(entries)) + b"".join(
        name_bytes(module) + name_bytes(field) + bytes([kind]) + descriptor
        for module, field, kind, descriptor in entries
    )


def module_imports(data: bytes) -> list[tuple[str, str, int, bytes]]:
    return next((imports(payload) for section_id, payload in sections(data) if section_id == 2), [])


def rename_import_module(data: bytes, old: str, new: str) -> bytes:
    return module_bytes(
        (
            section_id,
            import_section(
                [(new if module == old else module, field, kind, descriptor)
                 for module, field, kind, descriptor in imports(payload)]
            )
            if section_id == 2
            else payload,
        )
        for section_id, payload in sections(data)
    )


def shim_module(chunk_imports) -> bytes:
    """A module that imports what the chunks import from `__wasm_split` (one of each) under
    another module name and exports it back under the same field names."""
    by_field = {}
    for module, field, kind, descriptor in chunk_imports:
        if module != SPLIT_MODULE:
            raise MergeError(f"a chunk imports {module}.{field}, not from {SPLIT_MODULE}")
        if by_field.setdefault(field, (kind, descriptor)) != (kind, descriptor):
            raise MergeError(f"chunks import {SPLIT_MODULE}.{field} with different types")
    entries = [(SHIM_IMPORT_MODULE, field, kind, descriptor)
               for field, (kind, descriptor) in sorted(by_field.items())]
    counts = {}
    exports = []
    for _, field, kind, _ in entries:
        exports.append(name_bytes(field) + bytes([kind]) + leb(counts.get(kind, 0)))
        counts[kind] = counts.get(kind, 0) + 1
    return module_bytes([(2, import_section(entries)), (7, leb(len(exports)) + b"".join(exports))])


# --- Grouping ----------------------------------------------------------------------------------


def group_chunks(users: dict[str, frozenset], sizes: dict[str, int], max_files: int):
    """Disjoint groups of chunks such that no loader (a lazy island or function) needs more than
    `max_files` of them. Greedy: merge the two groups whose merge loads the fewest bytes into
    loaders that need only one of the two, per file it saves a loader that is over the limit."""
    groups = [([chunk], users[chunk], sizes[chunk]) for chunk in sorted(users, key=chunk_number)]

    def over_limit():
        files = {}
        for _, group_users, _ in groups:
            for loader in group_users:
                files[loader] = files.get(loader, 0) + 1
        return {loader for loader, count in files.items() if count > max_files}

    while over := over_limit():
        best = None
        for i, (_, users_i, size_i) in enumerate(groups):
            for j in range(i + 1, len(groups)):
                _, users_j, size_j = groups[j]
                saved = len(users_i & users_j & over)
                if not saved:
                    continue
                unneeded = len(users_i - users_j) * size_j + len(users_j - users_i) * size_i
                if best is None or unneeded / saved < best[0]:
                    best = (unneeded / saved, i, j)
        if best is None:
            raise MergeError("no two chunk groups share a loader over the limit")
        _, i, j = best
        chunks_j, users_j, size_j = groups.pop(j)
        chunks_i, users_i, size_i = groups[i]
        merged = sorted(chunks_i + chunks_j, key=chunk_number)
        groups[i] = (merged, users_i | users_j, size_i + size_j)
    return [chunks for chunks, _, _ in groups]


def chunk_number(name: str) -> int:
    return int(name.split(".")[0].split("_")[1])


# --- The build's files -------------------------------------------------------------------------


def content_hash(data: bytes) -> str:
    # cargo-leptos's own: MD5, base64url without padding (22 characters).
    return base64.urlsafe_b64encode(hashlib.md5(data).digest()).decode().rstrip("=")


def run(*command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise MergeError(f"{command[0]} failed:\n{result.stderr.strip()}")


def merge_group(pkg: Path, chunks: list[str], work: Path) -> bytes:
    chunk_files = [pkg / f"{chunk}.wasm" for chunk in chunks]
    shim = work / "shim.wasm"
    shim.write_bytes(shim_module([i for f in chunk_files for i in module_imports(f.read_bytes())]))
    merged, optimized = work / "merged.wasm", work / "optimized.wasm"
    args = [str(shim), SPLIT_MODULE]
    for index, path in enumerate(chunk_files):
        args += [str(path), f"chunk{index}"]
    run("wasm-merge", *FEATURES, *args, "-o", str(merged))
    # -Oz as cargo-leptos optimizes the bundle; the shim's exports go, nothing else uses them.
    run("wasm-opt", *FEATURES, "-Oz", "--remove-exports", "--pass-arg=remove-exports@*",
        str(merged), "-o", str(optimized))
    return rename_import_module(optimized.read_bytes(), SHIM_IMPORT_MODULE, SPLIT_MODULE)


CHUNK_LOADER = re.compile(
    r"(?:/\* [^*]* \*/\n)?const __chunk_(\d+) = makeLoad\(\(\) => \{\n"
    r"    const src = fetch\(new URL\(\"\./(chunk_\d+\.[A-Za-z0-9_-]{22})\.wasm\", "
    r"import\.meta\.url\)\);\n"
    r"    return async \(imports\) => \(WebAssembly\.instantiateStreaming\(src, imports\)\);\n"
    r"\}\n, \[\]\);\n"
)


def group_loader(ident: str, module: str) -> str:
    return (
        f"const {ident} = makeLoad(() => {{\n"
        f'    const src = fetch(new URL("./{module}.wasm", import.meta.url));\n'
        "    return async (imports) => (WebAssembly.instantiateStreaming(src, imports));\n"
        "}\n, []);\n"
    )


def rewrite_split_js(text: str, chunk_to_group: dict[str, tuple[str, str]]) -> str:
    """Replaces the loaders of merged chunks by one loader per group, and each dependency list's
    chunks by their groups (once each)."""
    found = set()
    emitted = set()

    def replace_loader(match):
        chunk = match.group(2)
        found.add(chunk)
        if chunk not in chunk_to_group:
            return match.group(0)
        ident, module = chunk_to_group[chunk]
        if ident in emitted:
            return ""
        emitted.add(ident)
        return group_loader(ident, module)

    text = CHUNK_LOADER.sub(replace_loader, text)
    missing = set(chunk_to_group) - found
    if missing:
        raise MergeError(f"__wasm_split.js has no loader for {sorted(missing)[:3]}")
    ident_of = {f"__chunk_{chunk_number(c)}": ident for c, (ident, _) in chunk_to_group.items()}

    def replace_deps(match):
        deps = [d.strip() for d in match.group(1).split(",") if d.strip()]
        return ", [" + ", ".join(dict.fromkeys(ident_of.get(d, d) for d in deps)) + "])"

    text = re.sub(r", \[((?:__chunk_\d+(?:, )?)+)\]\)", replace_deps, text)
    leftover = [ident for ident in ident_of if re.search(rf"\b{ident}\b", text)]
    if leftover:
        raise MergeError(f"__wasm_split.js still names {leftover[:3]}")
    return text


def read_hash_file(path: Path) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in path.read_text().splitlines() if ": " in line)


def remove_with_compressed(path: Path):
    for suffix in ("", ".br", ".gz"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def asset_names(hashes: dict[str, str]) -> dict[str, str]:
    """The file names `hash.txt`'s hashes give the files this step rewrites (cargo-leptos's
    scheme, which the server follows)."""
    return {
        "manifest": f"__wasm_split_manifest.{hashes['manifest']}.json",
        "split": f"__wasm_split.{hashes['split']}.js",
        "js": f"berth.{hashes['js']}.js",
        "wasm": f"berth.{hashes['wasm']}.wasm",
    }


def merge(pkg: Path, hash_file: Path, max_files: int):
    hashes = read_hash_file(hash_file)
    if "split" not in hashes or "manifest" not in hashes:
        raise MergeError(f"{hash_file} names no split build (cargo leptos build --split)")
    old = asset_names(hashes)
    manifest = json.loads((pkg / old["manifest"]).read_text())

    if any(m.startswith("chunks_") for modules in manifest.values() for m in modules):
        print("merge_wasm_chunks: already merged", file=sys.stderr)
        return
    users = {}
    for loader, modules in manifest.items():
        for module in modules:
            if module.startswith("chunk_"):
                users.setdefault(module, set()).add(loader)
    users = {chunk: frozenset(loaders) for chunk, loaders in users.items()}
    if not users:
        print("merge_wasm_chunks: no chunks to merge", file=sys.stderr)
        return
    sizes = {chunk: (pkg / f"{chunk}.wasm").stat().st_size for chunk in users}
    groups = [g for g in group_chunks(users, sizes, max_files) if len(g) > 1]
    if not groups:
        print(f"merge_wasm_chunks: no island needs more than {max_files} chunks", file=sys.stderr)
        return

    # Everything is computed before anything is written, so a failure leaves the build as it was.
    chunk_to_group = {}
    outputs = {}  # file name -> bytes
    with tempfile.TemporaryDirectory(prefix="berth-merge-") as work:
        for index, chunks in enumerate(groups):
            data = merge_group(pkg, chunks, Path(work))
            module = f"chunks_{index}.{content_hash(data)}"
            outputs[f"{module}.wasm"] = data
            for chunk in chunks:
                chunk_to_group[chunk] = (f"__chunks_{index}", module)

    new_manifest = {
        loader: list(dict.fromkeys(chunk_to_group.get(m, (None, m))[1] for m in modules))
        for loader, modules in manifest.items()
    }
    manifest_data = json.dumps(new_manifest, separators=(",", ":")).encode()
    # The main JS and `__wasm_split.js` import each other, so their names cannot both hash their
    # final contents. `__wasm_split.js`'s hashes its contents with the main JS's old name (itself
    # a hash of cargo-leptos's output); the main JS's hashes its contents with the new name. The
    # main module imports `__wasm_split.js`'s functions under its file name, so it is renamed too.
    split_text = rewrite_split_js((pkg / old["split"]).read_text(), chunk_to_group)
    if old["js"] not in split_text:
        raise MergeError(f"{old['split']} does not import {old['js']}")
    main_js = (pkg / old["js"]).read_text()
    if old["split"] not in main_js:
        raise MergeError(f"{old['js']} does not import {old['split']}")
    split_hash = content_hash(split_text.encode())
    split_name = asset_names({**hashes, "split": split_hash})["split"]
    main_js_data = main_js.replace(old["split"], split_name).encode()
    main_wasm_data = rename_import_module(
        (pkg / old["wasm"]).read_bytes(), f"./{old['split']}", f"./{split_name}"
    )
    hashes.update(js=content_hash(main_js_data), wasm=content_hash(main_wasm_data),
                  manifest=content_hash(manifest_data), split=split_hash)
    new = asset_names(hashes)
    outputs[new["split"]] = split_text.replace(old["js"], new["js"]).encode()
    outputs[new["js"]] = main_js_data
    outputs[new["wasm"]] = main_wasm_data
    outputs[new["manifest"]] = manifest_data

    for name, data in outputs.items():
        (pkg / name).write_bytes(data)
    new_hash_file = hash_file.with_name(hash_file.name + ".new")
    new_hash_file.write_text("".join(f"{key}: {value}\n" for key, value in hashes.items()))
    os.replace(new_hash_file, hash_file)
    for name in list(old.values()) + [f"{chunk}.wasm" for chunk in chunk_to_group]:
        if name not in outputs:
            remove_with_compressed(pkg / name)

    before = sum(sizes[c] for c in chunk_to_group)
    modules = {module for _, module in chunk_to_group.values()}
    after = sum(len(outputs[f"{module}.wasm"]) for module in modules)
    print(f"merge_wasm_chunks: {len(chunk_to_group)} chunks ({before} bytes) into {len(groups)} "
          f"files ({after} bytes); no loader needs more than {max_files}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-files", type=int, default=4, help="chunk files one loader may need")
    parser.add_argument("pkg", type=Path)
    parser.add_argument("hash_file", type=Path)
    args = parser.parse_args()
    try:
        merge(args.pkg, args.hash_file, args.max_files)
    except (MergeError, OSError, ValueError) as error:
        sys.exit(f"merge_wasm_chunks: {error}")


if __name__ == "__main__":
    main()
