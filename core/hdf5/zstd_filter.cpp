// zstd filter for HDF5 (id 32015); see zstd_filter.h. HDF5 hands the filter a malloc'ed buffer and
// expects a malloc'ed one back (its H5MM layer is plain malloc in release builds, and every public
// zstd/blosc plugin relies on that), so this file uses malloc/free rather than C++ allocation.
#include "core/hdf5/zstd_filter.h"

#include <H5PLextern.h>
#include <H5Zpublic.h>
#include <zstd.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifndef EF_H5ZSTD_PLUGIN
#include <mutex>
#endif

namespace {

// HDF5 chunks are limited to 4 GiB - 1 bytes; no honest frame decodes to more.
constexpr unsigned long long kMaxChunkBytes = 0xffffffffULL;

thread_local char g_last_error[256];

size_t fail(const char* what, const char* detail = nullptr) {
    std::snprintf(g_last_error, sizeof g_last_error, "zstd filter: %s%s%s", what, detail ? ": " : "",
                  detail ? detail : "");
    return 0;
}

int level_from(size_t cd_nelmts, const unsigned cd_values[]) {
    int level = cd_nelmts >= 1 ? static_cast<int>(cd_values[0]) : ZSTD_CLEVEL_DEFAULT;
    if (level < ZSTD_minCLevel()) level = ZSTD_minCLevel();
    if (level > ZSTD_maxCLevel()) level = ZSTD_maxCLevel();
    return level;
}

size_t compress(size_t cd_nelmts, const unsigned cd_values[], size_t nbytes, size_t* buf_size, void** buf) {
    const size_t bound = ZSTD_compressBound(nbytes);
    if (ZSTD_isError(bound)) return fail("chunk too large to compress");
    void* out = std::malloc(bound);
    if (!out) return fail("out of memory");
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    if (!cctx) {
        std::free(out);
        return fail("out of memory");
    }
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level_from(cd_nelmts, cd_values));
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    const size_t n = ZSTD_compress2(cctx, out, bound, *buf, nbytes);
    ZSTD_freeCCtx(cctx);
    if (ZSTD_isError(n)) {
        std::free(out);
        return fail("compression failed", ZSTD_getErrorName(n));
    }
    std::free(*buf);
    *buf = out;
    *buf_size = bound;
    return n;
}

// Frames without a content size (other writers' streaming mode): grow the output up to `limit`.
size_t decompress_stream(const void* src, size_t nbytes, unsigned long long limit, size_t* buf_size, void** buf) {
    ZSTD_DStream* ds = ZSTD_createDStream();
    if (!ds) return fail("out of memory");
    size_t cap = nbytes * 4 < (1u << 20) ? (1u << 20) : nbytes * 4;
    if (cap > limit) cap = static_cast<size_t>(limit);
    char* out = static_cast<char*>(std::malloc(cap ? cap : 1));
    ZSTD_inBuffer in{src, nbytes, 0};
    ZSTD_outBuffer ob{out, cap, 0};
    size_t ret = 1;
    while (out) {
        ret = ZSTD_decompressStream(ds, &ob, &in);
        if (ZSTD_isError(ret) || ret == 0) break;
        if (in.pos == in.size && ob.pos < ob.size) break;  // truncated frame
        if (ob.pos == ob.size) {
            if (cap >= limit) break;
            const size_t next = cap * 2 > limit ? static_cast<size_t>(limit) : cap * 2;
            char* grown = static_cast<char*>(std::realloc(out, next));
            if (!grown) {
                std::free(out);
                out = nullptr;
                break;
            }
            out = grown;
            cap = next;
            ob.dst = out;
            ob.size = cap;
        }
    }
    ZSTD_freeDStream(ds);
    if (!out) return fail("out of memory");
    if (ZSTD_isError(ret) || ret != 0 || in.pos != in.size) {
        std::free(out);
        return fail("corrupt or oversized frame", ZSTD_isError(ret) ? ZSTD_getErrorName(ret) : nullptr);
    }
    std::free(*buf);
    *buf = out;
    *buf_size = cap;
    return ob.pos;
}

size_t decompress(size_t cd_nelmts, const unsigned cd_values[], size_t nbytes, size_t* buf_size, void** buf) {
    unsigned long long limit = kMaxChunkBytes;
    if (cd_nelmts >= 2 && cd_values[1] != 0) limit = cd_values[1];
    const unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);
    if (size == ZSTD_CONTENTSIZE_ERROR) return fail("chunk is not a zstd frame");
    if (size == ZSTD_CONTENTSIZE_UNKNOWN) return decompress_stream(*buf, nbytes, limit, buf_size, buf);
    if (size > limit) {
        char detail[96];
        std::snprintf(detail, sizeof detail, "frame claims %llu bytes, chunk holds at most %llu", size, limit);
        return fail("corrupt frame header", detail);
    }
    void* out = std::malloc(size ? static_cast<size_t>(size) : 1);
    if (!out) return fail("out of memory");
    const size_t n = ZSTD_decompress(out, static_cast<size_t>(size), *buf, nbytes);
    if (ZSTD_isError(n) || n != size) {
        std::free(out);
        return fail("corrupt chunk data", ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch");
    }
    std::free(*buf);
    *buf = out;
    *buf_size = static_cast<size_t>(size ? size : 1);
    return n;
}

size_t zstd_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes, size_t* buf_size,
                   void** buf) {
    g_last_error[0] = '\0';
    if (!buf || !*buf || !buf_size) return fail("no input buffer");
    if (flags & H5Z_FLAG_REVERSE) return decompress(cd_nelmts, cd_values, nbytes, buf_size, buf);
    return compress(cd_nelmts, cd_values, nbytes, buf_size, buf);
}

const H5Z_class2_t kZstdClass = {
    H5Z_CLASS_T_VERS,
    static_cast<H5Z_filter_t>(ef::kZstdFilterId),
    1,  // encoder present
    1,  // decoder present
    "zstd",
    nullptr,  // can_apply: any type, any chunk
    nullptr,  // set_local: the writer puts the chunk size into cd_values itself
    zstd_filter,
};

}  // namespace

#ifdef EF_H5ZSTD_PLUGIN

extern "C" {
H5PLUGIN_DLL H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }
H5PLUGIN_DLL const void* H5PLget_plugin_info(void) { return &kZstdClass; }
}

#else

namespace ef {

Status register_zstd_filter() {
    static std::once_flag once;
    static Status result;
    std::call_once(once, [] {
        // H5Zregister replaces a definition loaded earlier from a plugin, so ours is the one used.
        if (H5Zregister(&kZstdClass) < 0)
            result = make_error("HDF5: cannot register the zstd filter (id 32015)");
    });
    return result;
}

std::string zstd_filter_last_error() { return g_last_error; }

}  // namespace ef

#endif
