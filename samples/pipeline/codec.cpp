#include "codec.hpp"

#include <zlib.h>
#include <zstd.h>

#include <stdexcept>

compressed_blob compressor::operator()(const file_blob& in) const {
    compressed_blob out;
    out.path = in.path + (codec == codec_kind::zstd ? ".zst" : ".zz");
    out.original_size = in.data.size();
    if (codec == codec_kind::zstd) {
        out.data = coexec::shared_buffer(ZSTD_compressBound(in.data.size()));
        std::size_t n =
            ZSTD_compress(out.data.data(), out.data.size(), in.data.data(), in.data.size(), level);
        if (ZSTD_isError(n)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
        out.size = n;
    } else {
        uLongf n = compressBound(in.data.size());
        out.data = coexec::shared_buffer(n);
        int rc = compress2(reinterpret_cast<Bytef*>(out.data.data()), &n,
                           reinterpret_cast<const Bytef*>(in.data.data()), in.data.size(), level);
        if (rc != Z_OK)
            throw std::runtime_error("zlib: compress2 failed with " + std::to_string(rc));
        out.size = n;
    }
    return out;
}

std::string codec_name(codec_kind codec) {
    return codec == codec_kind::zstd ? "zstd" : "zlib";
}
