"""A dequantized copy of a GGUF file: the same metadata (tokenizer and chat template included) and every
tensor in F32, decoded by blocks.dequantize (bit-exact with gguf.quants.dequantize). Rows stay in the file's
order (llama's permuted Q/K included), so any GGUF reader loads it as the same model with float32 weights:
what `anyaccel bench model --vs llama.cpp` compares the float32 paths on.

    python -m anyaccel.models.gguf.convert model.Q4_1.gguf model.F32.gguf
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import blocks

FILE_TYPE_ALL_F32 = 0  # llama.cpp's LLAMA_FTYPE_ALL_F32


def write_f32(src: str | Path, dst: str | Path) -> Path:
    import gguf

    reader = gguf.GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(dst), arch)
    for field in reader.fields.values():
        if field.name in ("general.architecture", "general.file_type") or field.name.startswith("GGUF."):
            continue  # the writer adds the architecture and the GGUF header fields itself
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(FILE_TYPE_ALL_F32)
    for t in reader.tensors:
        qtype = t.tensor_type.name
        if qtype not in blocks.SUPPORTED:
            raise ValueError(f"{src}: tensor {t.name}: {blocks.unsupported(qtype)}")
        shape = tuple(int(d) for d in reversed(t.shape))
        writer.add_tensor(t.name, blocks.dequantize(qtype, t.data, shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m anyaccel.models.gguf.convert SRC.gguf DST.gguf")
    print(write_f32(sys.argv[1], sys.argv[2]))
