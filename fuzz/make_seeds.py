#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz harnesses (fuzz/seeds/<harness>/), small valid and
near-valid files of each format, with the harness's leading mode byte where it has one.
Python's standard library only. The pipeline harnesses are also seeded, at run time, with
pipelines/*.yaml and tests/errors/cases/*.yaml (scripts/fuzz.sh)."""
import gzip, json, os, struct, sys, zlib

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def put(harness, name, data):
    d = os.path.join(root, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(dims, payload):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


# IDX: mode 0 = images alone, mode 1 = labels beside 3 fixed images.
img = idx([3, 4, 4], bytes(range(48)))
put("fuzz_idx", "images_3x4x4", b"\0" + img)
put("fuzz_idx", "images_3x4x4_gz", b"\0" + gzip.compress(img, mtime=0))
put("fuzz_idx", "images_rank4", b"\0" + idx([2, 1, 3, 3], bytes(18)))
put("fuzz_idx", "images_rank1", b"\0" + idx([5], bytes(5)))
fm = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
if os.path.exists(fm):
    with gzip.open(fm) as f:
        raw = f.read(16 + 2 * 784)
    two = idx([2, 28, 28], raw[16:])
    put("fuzz_idx", "fashion_2", b"\0" + two)
    put("fuzz_idx", "fashion_2_gz", b"\0" + gzip.compress(two, mtime=0))
lab = idx([3], bytes([0, 7, 9]))
put("fuzz_idx", "labels_3", b"\1" + lab)
put("fuzz_idx", "labels_3_gz", b"\1" + gzip.compress(lab, mtime=0))


def npy(descr, shape, payload, fortran=False, version=1):
    shape_s = "(" + "".join(f"{s}, " if len(shape) == 1 else f"{s}, " for s in shape).rstrip(", ")
    shape_s += ",)" if len(shape) == 1 else ")"
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", shape_s)
    hl = 10 if version == 1 else 12
    pad = 64 - (hl + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header.encode()


f32 = struct.pack("<12f", *[i / 11 for i in range(12)])
put("fuzz_npy", "f32_3x2x2", b"\0" + npy("<f4", (3, 2, 2), f32) + f32)
put("fuzz_npy", "f32_3x2x2_v2", b"\0" + npy("<f4", (3, 2, 2), f32, version=2) + f32)
put("fuzz_npy", "f64_fortran", b"\0" + npy("<f8", (2, 3), b"", fortran=True)
    + struct.pack("<6d", *range(6)))
put("fuzz_npy", "f32_big_endian", b"\0" + npy(">f4", (2, 2), b"") + struct.pack(">4f", 1, 2, 3, 4))
put("fuzz_npy", "u8_2x4x4", b"\0" + npy("|u1", (2, 4, 4), b"") + bytes(range(32)))
put("fuzz_npy", "i32_4", b"\0" + npy("<i4", (4,), b"") + struct.pack("<4i", 1, 2, 3, 4))
put("fuzz_npy", "object", b"\0" + npy("|O", (2,), b"") + b"\x80\x02]q\x00.")
put("fuzz_npy", "labels_i64", b"\1" + npy("<i8", (3,), b"") + struct.pack("<3q", 0, 4, 9))
put("fuzz_npy", "labels_i32", b"\1" + npy("<i4", (3,), b"") + struct.pack("<3i", 2, 1, 0))
put("fuzz_npy", "labels_u8", b"\1" + npy("|u1", (3,), b"") + bytes([1, 1, 3]))
put("fuzz_npy", "labels_f32", b"\1" + npy("<f4", (3,), b"") + struct.pack("<3f", 0, 1, 2))


def png(width, height, color_type, depth, rows, interlace=0, extra=b""):
    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, interlace)
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


put("fuzz_png", "gray8", png(4, 4, 0, 8, [bytes(range(i * 4, i * 4 + 4)) for i in range(4)]))
put("fuzz_png", "gray16", png(2, 2, 0, 16, [bytes(4), bytes([255] * 4)]))
put("fuzz_png", "gray1", png(8, 2, 0, 1, [b"\xaa", b"\x55"]))
put("fuzz_png", "gray_alpha", png(2, 2, 4, 8, [bytes(4), bytes([9] * 4)]))
put("fuzz_png", "rgb8", png(2, 2, 2, 8, [bytes(range(6)), bytes(range(6, 12))]))
put("fuzz_png", "rgba8", png(2, 2, 6, 8, [bytes(range(8)), bytes(range(8, 16))]))
def chunk_plte():
    data = bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    c = b"PLTE" + data
    return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c))
put("fuzz_png", "palette", png(2, 2, 3, 8, [bytes([0, 1]), bytes([2, 0])], extra=chunk_plte()))
put("fuzz_png", "interlaced", png(3, 3, 0, 8, [bytes(3)] * 3, interlace=1))


def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob


put("fuzz_safetensors", "two", safetensors({
    "dense.kernel": ("F32", [2, 3], struct.pack("<6f", *range(6))),
    "dense.bias": ("F32", [3], struct.pack("<3f", 1, 2, 3))}, {"format": "pt"}))
put("fuzz_safetensors", "scalar", safetensors({"step": ("I64", [], struct.pack("<q", 7))}))
put("fuzz_safetensors", "empty", safetensors({}, {"loom": "checkpoint"}))
put("fuzz_safetensors", "f16", safetensors({"x": ("F16", [2], b"\0<\0<")}))
print("seeds written under", root)
