// coexec/detail/codec.hpp — the whole process-boundary codec in one include.
//
// The codec lives in coexec/detail/codec/, one header per concern:
//   byte_buffers.hpp  byte_writer / byte_reader / close_fds (no cereal)
//   code_address.hpp  naming a function to another process (no cereal)
//   exceptions.hpp    encode_exception / decode_exception (no cereal)
//   archive.hpp       the cereal archives over our buffers, bitwise fallback
//   traits.hpp        is_serializable_v, behind coexec::serializable
//   values.hpp        encode / decode of values and task results
//   remote_call.hpp   trampolines, compile-time checks, encode_call / encode_chunk
// Include what you use from there; this umbrella is for code that needs it
// all (and pulls cereal in).
#pragma once

#include "coexec/detail/codec/archive.hpp"
#include "coexec/detail/codec/byte_buffers.hpp"
#include "coexec/detail/codec/code_address.hpp"
#include "coexec/detail/codec/exceptions.hpp"
#include "coexec/detail/codec/remote_call.hpp"
#include "coexec/detail/codec/traits.hpp"
#include "coexec/detail/codec/values.hpp"
