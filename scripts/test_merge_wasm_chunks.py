"""Tests of scripts/merge_wasm_chunks.py: python3 -m unittest discover -s scripts.
The merged build itself is tested by the Playwright suite, which loads every page from it."""

import random
import unittest

from merge_wasm_chunks import (
    MergeError,
    group_chunks,
    imports,
    module_imports,
    rename_import_module,
    rewrite_split_js,
    sections,
    shim_module,
)

MEMORY = ("__wasm_split", "memory", 2, bytes([0x00, 18]))
TABLE = ("__wasm_split", "__indirect_function_table", 1, bytes([0x70, 0x00, 0xF0, 0x12]))
GLOBAL = ("__wasm_split", "__wasm_split_shared0", 3, bytes([0x7F, 0x01]))


class Grouping(unittest.TestCase):
    def test_groups_are_disjoint_cover_every_chunk_and_keep_each_loader_under_the_limit(self):
        rng = random.Random(7)
        loaders = [f"island_{i}" for i in range(12)]
        users = {
            f"chunk_{n}.h": frozenset(rng.sample(loaders, rng.randint(1, 5))) for n in range(60)
        }
        sizes = {chunk: rng.randint(90, 2100) for chunk in users}
        for limit in (2, 4, 6):
            groups = group_chunks(users, sizes, limit)
            grouped = [chunk for group in groups for chunk in group]
            self.assertEqual(sorted(grouped), sorted(users))  # each chunk once
            for loader in loaders:
                needed = sum(1 for group in groups if any(loader in users[c] for c in group))
                self.assertLessEqual(needed, limit, loader)

    def test_chunks_of_one_loader_under_the_limit_stay_apart(self):
        users = {"chunk_1.h": frozenset({"a"}), "chunk_2.h": frozenset({"a", "b"})}
        self.assertEqual(group_chunks(users, {"chunk_1.h": 10, "chunk_2.h": 10}, 2),
                         [["chunk_1.h"], ["chunk_2.h"]])

    def test_the_cheapest_merge_goes_first(self):
        # "a" needs three chunks and may load two files. Merging 1 and 2 loads nothing unneeded;
        # any merge with 3 would load its 1,000 bytes into "b" or 1 and 2 into "c".
        users = {"chunk_1.h": frozenset({"a"}), "chunk_2.h": frozenset({"a"}),
                 "chunk_3.h": frozenset({"a", "b"}), "chunk_4.h": frozenset({"c"})}
        sizes = {"chunk_1.h": 500, "chunk_2.h": 500, "chunk_3.h": 1000, "chunk_4.h": 10}
        self.assertEqual(group_chunks(users, sizes, 2),
                         [["chunk_1.h", "chunk_2.h"], ["chunk_3.h"], ["chunk_4.h"]])


class Binary(unittest.TestCase):
    def test_the_shim_imports_each_once_under_its_own_module_and_exports_them_back(self):
        shim = shim_module([MEMORY, TABLE, MEMORY, GLOBAL, TABLE])
        self.assertEqual(sorted(field for _, field, _, _ in module_imports(shim)),
                         ["__indirect_function_table", "__wasm_split_shared0", "memory"])
        self.assertEqual({module for module, _, _, _ in module_imports(shim)}, {"__berth_shim"})
        self.assertEqual([section_id for section_id, _ in sections(shim)], [2, 7])

    def test_chunks_importing_one_name_with_two_types_are_refused(self):
        other_memory = MEMORY[:3] + (bytes([0x00, 19]),)
        with self.assertRaises(MergeError):
            shim_module([MEMORY, other_memory])

    def test_renaming_an_import_module_keeps_everything_else(self):
        shim = shim_module([MEMORY, TABLE, GLOBAL])
        renamed = rename_import_module(shim, "__berth_shim", "__wasm_split")
        self.assertEqual(sorted(module_imports(renamed)), sorted([MEMORY, TABLE, GLOBAL]))
        self.assertEqual(dict(sections(renamed))[7], dict(sections(shim))[7])
        self.assertEqual(rename_import_module(renamed, "__berth_shim", "__wasm_split"), renamed)

    def test_a_memory_with_a_maximum_is_read_whole(self):
        entry = imports(bytes([1, 1, ord("m"), 1, ord("x"), 2, 0x01, 18, 0x80, 0x01]))
        self.assertEqual(entry, [("m", "x", 2, bytes([0x01, 18, 0x80, 0x01]))])


def chunk_loader(number: int) -> str:
    return (
        f"/* island_loader_1 */\nconst __chunk_{number} = makeLoad(() => {{\n"
        f'    const src = fetch(new URL("./chunk_{number}.{"A" * 22}.wasm", import.meta.url));\n'
        "    return async (imports) => (WebAssembly.instantiateStreaming(src, imports));\n"
        "}\n, []);\n"
    )


SPLIT_JS = (
    'import { initSync } from "./berth.main.js";\n'
    + "".join(chunk_loader(n) for n in (1, 2, 3))
    + "export const __wasm_split_load_island = wrapAsyncCb(makeLoad(() => {\n"
    + '    const src = fetch(new URL("./split_island.B.wasm", import.meta.url));\n'
    + "}\n, [__chunk_1, __chunk_2, __chunk_3]));\n"
)


class SplitJs(unittest.TestCase):
    def test_merged_chunks_load_once_as_their_group(self):
        group = ("__chunks_0", "chunks_0.G")
        chunk_to_group = {f"chunk_1.{'A' * 22}": group, f"chunk_3.{'A' * 22}": group}
        text = rewrite_split_js(SPLIT_JS, chunk_to_group)
        self.assertEqual(text.count("const __chunks_0 = makeLoad"), 1)
        self.assertIn('"./chunks_0.G.wasm"', text)
        self.assertNotIn("__chunk_1", text)
        self.assertNotIn("__chunk_3", text)
        self.assertIn(", [__chunks_0, __chunk_2]));", text)

    def test_a_chunk_without_its_loader_is_an_error(self):
        with self.assertRaises(MergeError):
            rewrite_split_js(SPLIT_JS, {f"chunk_9.{'A' * 22}": ("__chunks_0", "chunks_0.G")})


if __name__ == "__main__":
    unittest.main()
