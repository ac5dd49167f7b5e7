#include "answer.hpp"

#include "responses/anthropic.hpp"
#include "responses/openai.hpp"
#include "wire.hpp"

namespace rr::mock {
namespace {

void append_dialect_body(const Exchange& ex, std::string& out) {
    if (ex.is_error()) {
        if (ex.anthropic()) anthropic::append_error(ex.status, ex.error, out);
        else openai::append_error(ex.status, ex.error, out);
    } else if (ex.anthropic()) {
        anthropic::append_body(ex, out);
    } else {
        openai::append_body(ex, out);
    }
}

// Appends scratch as stream payload: one chunk, or raw bytes for HTTP/1.0.
void append_stream_payload(const Exchange& ex, const std::string& scratch, std::string& out) {
    if (ex.http10) out += scratch;
    else append_chunk(out, scratch);
}

}  // namespace

std::size_t append_answer(const Exchange& ex, std::string& out, std::string& scratch) {
    HeadSpec head;
    head.status = ex.status;
    head.keep_alive = ex.keep_alive;
    head.http10_peer = ex.http10;
    head.openai_account = ex.endpoint != Endpoint::none && !ex.anthropic();
    scratch.clear();
    if (ex.status == 204 || ex.status == 304) {
        head.framing = Framing::none;
    } else {
        append_dialect_body(ex, scratch);
        head.content_length = scratch.size();
    }
    append_head(out, head);
    if (ex.head_only) return 0;
    out += scratch;
    return scratch.size();
}

bool stream_keeps_alive(const Exchange& ex) noexcept { return ex.keep_alive && !ex.http10; }

void append_stream_head(const Exchange& ex, std::string& out, std::string& scratch) {
    HeadSpec head;
    head.status = ex.status;
    head.content_type = "text/event-stream";
    head.event_stream = true;
    head.framing = ex.http10 ? Framing::until_close : Framing::chunked;
    head.keep_alive = stream_keeps_alive(ex);
    head.openai_account = !ex.anthropic();
    append_head(out, head);
    scratch.clear();
    if (ex.anthropic()) anthropic::append_stream_open(ex, scratch);
    else openai::append_stream_open(ex, scratch);
    append_stream_payload(ex, scratch, out);
}

void append_stream_delta(const Exchange& ex, std::uint32_t index, std::string& out,
                         std::string& scratch) {
    scratch.clear();
    if (ex.anthropic()) anthropic::append_stream_delta(ex, index, scratch);
    else openai::append_stream_delta(ex, index, scratch);
    append_stream_payload(ex, scratch, out);
}

void append_stream_end(const Exchange& ex, std::string& out, std::string& scratch) {
    scratch.clear();
    if (ex.anthropic()) anthropic::append_stream_end(ex, scratch);
    else openai::append_stream_end(ex, scratch);
    append_stream_payload(ex, scratch, out);
    if (!ex.http10) out += kLastChunk;
}

void append_json_answer(int status, std::string_view body, bool keep_alive, bool http10,
                        std::string& out) {
    HeadSpec head;
    head.status = status;
    head.content_length = body.size();
    head.keep_alive = keep_alive;
    head.http10_peer = http10;
    append_head(out, head);
    out += body;
}

void append_error_answer(int status, std::string_view message, bool keep_alive, bool http10,
                         std::string& out, std::string& scratch) {
    scratch.clear();
    openai::append_error(status, message, scratch);
    append_json_answer(status, scratch, keep_alive, http10, out);
}

}  // namespace rr::mock
