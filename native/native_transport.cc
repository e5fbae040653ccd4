#include "native_transport.h"

#include "surface.h"
#include "test_fault.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

namespace iottly {

namespace {

// Length of the Float64Array filled by counters(): one value per IOTTLY_COUNTER_FIELDS entry (surface.h).
#define IOTTLY_COUNT_ONE(name) +1
constexpr size_t kCounterFields = 0 IOTTLY_COUNTER_FIELDS(IOTTLY_COUNT_ONE, IOTTLY_COUNT_ONE);
#undef IOTTLY_COUNT_ONE

// A non-negative integer option that must fit `max` (the type it is stored in: on 32-bit ARM a
// size_t would silently keep only the low 32 bits of a larger value).
uint64_t RequireCount(const Napi::Object& options, const char* name, uint64_t max) {
  Napi::Value v = options.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(options.Env(), std::string("options.") + name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  const double limit = std::min(static_cast<double>(max), 9007199254740991.0);
  if (!(d >= 0) || d > limit) {
    throw Napi::RangeError::New(options.Env(), std::string("options.") + name + " must be an integer from 0 to " +
                                                   std::to_string(static_cast<uint64_t>(limit)));
  }
  return static_cast<uint64_t>(d);
}

void Check(Napi::Env env, napi_status status, const char* what) {
  if (status != napi_ok) throw Napi::Error::New(env, std::string(what) + " failed");
}

// UTF-8 bytes of a string (JS tells the byte length, so one copy suffices).
std::string StringBytes(const Napi::Value& value, const Napi::Value& lengthHint) {
  Napi::Env env = value.Env();
  if (!value.IsString()) throw Napi::TypeError::New(env, "frames must be a string or a Buffer");
  size_t expected = 0;
  if (lengthHint.IsNumber()) {
    expected = static_cast<size_t>(lengthHint.As<Napi::Number>().DoubleValue());
  } else {
    Check(env, napi_get_value_string_utf8(env, value, nullptr, 0, &expected), "napi_get_value_string_utf8");
  }
  std::string out(expected + 1, '\0');
  size_t copied = 0;
  Check(env, napi_get_value_string_utf8(env, value, out.data(), out.size(), &copied), "napi_get_value_string_utf8");
  if (copied != expected) {
    // A wrong hint: measure properly rather than keep a truncated frame.
    Check(env, napi_get_value_string_utf8(env, value, nullptr, 0, &expected), "napi_get_value_string_utf8");
    out.assign(expected + 1, '\0');
    Check(env, napi_get_value_string_utf8(env, value, out.data(), out.size(), &copied), "napi_get_value_string_utf8");
  }
  out.resize(copied);
  return out;
}

}  // namespace

Napi::Function NativeTransport::Init(Napi::Env env) {
  return DefineClass(env, "NativeTransport",
                     {
                         InstanceMethod<&NativeTransport::Start>("start"),
                         InstanceMethod<&NativeTransport::Push>("push"),
                         InstanceMethod<&NativeTransport::Call>("call"),
                         InstanceMethod<&NativeTransport::Hold>("hold"),
                         InstanceMethod<&NativeTransport::Stop>("stop"),
                         InstanceMethod<&NativeTransport::Join>("join"),
                         InstanceMethod<&NativeTransport::ReadCounters>("counters"),
                         InstanceMethod<&NativeTransport::Ref>("ref"),
                         InstanceMethod<&NativeTransport::Unref>("unref"),
                         InstanceMethod<&NativeTransport::Consumed>("consumed"),
                     });
}

NativeTransport::NativeTransport(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeTransport>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsTypedArray() || !info[2].IsFunction()) {
    throw Napi::TypeError::New(env, "NativeTransport(options, status: Float64Array, onEvents: Function)");
  }
  Napi::Object options = info[0].As<Napi::Object>();
  Napi::Value path = options.Get("socketPath");
  if (!path.IsString()) throw Napi::TypeError::New(env, "options.socketPath must be a string");
  auto status = info[1].As<Napi::TypedArray>();
  if (status.TypedArrayType() != napi_float64_array || status.ElementLength() < 3) {
    throw Napi::TypeError::New(env, "status must be a Float64Array of at least 3 elements");
  }
  IoOptions io;
  io.socketPath = path.As<Napi::String>().Utf8Value();
  constexpr uint64_t kSizeMax = std::numeric_limits<size_t>::max();
  io.reconnectIntervalMs = static_cast<uint32_t>(RequireCount(options, "reconnectIntervalMs", UINT32_MAX));
  io.maxBufferedMsgs = static_cast<size_t>(RequireCount(options, "maxBufferedMsgs", kSizeMax));
  io.maxQueueBytes = RequireCount(options, "maxQueueBytes", UINT64_MAX);
  io.highWaterMark = RequireCount(options, "highWaterMark", UINT64_MAX);
  // Line lengths travel as uint32 (LineBatch::sizes, the Uint32Array given to JavaScript).
  io.maxFrameBytes = static_cast<size_t>(RequireCount(options, "maxFrameBytes", std::min<uint64_t>(kSizeMax, UINT32_MAX)));
  maxFrameBytes_ = io.maxFrameBytes;

  statusRef_ = Napi::Persistent(status.As<Napi::Float64Array>());
  status_ = statusRef_.Value().Data();
  // Kept as a property of this object, not a persistent reference: the callback closes over the
  // TypeScript wrapper that owns this object, and a persistent reference would make that cycle a
  // root, so a stopped transport could never be collected. The thread-safe function holds it only
  // while the I/O thread runs.
  Napi::PropertyDescriptor slot =
      Napi::PropertyDescriptor::Value("__onEvents", info[2], napi_default);
  info.This().As<Napi::Object>().DefineProperty(slot);
  env_ = env;
  // Runs on the I/O thread: one thread-safe call announces a whole batch of pending events.
  loop_ = std::make_unique<IoLoop>(std::move(io), [this] {
    const napi_status s = tsfn_.NonBlockingCall();
    (void)s;  // napi_closing: the environment is going away and its cleanup hook stops us
  });
}

NativeTransport::~NativeTransport() {
  // Normally stop()/join() or the cleanup hook ran first; this covers a transport never stopped.
  if (loop_) loop_->Abort();
  if (hookAdded_) {
    napi_remove_env_cleanup_hook(env_, &NativeTransport::OnEnvCleanup, this);
    hookAdded_ = false;
  }
}

Napi::Value NativeTransport::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (running_) return env.Undefined();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "hello must be a string");
  std::string hello = info[0].As<Napi::String>().Utf8Value();
  Napi::Value onEvents = Value().Get("__onEvents");
  if (!onEvents.IsFunction()) throw Napi::TypeError::New(env, "the event callback is gone");
  tsfn_ = EventFunction::New(env, onEvents.As<Napi::Function>(), "iottly-sdk-transport", 0, 1, this);
  tsfnLive_ = true;
  if (!refed_) tsfn_.Unref(env);  // node-addon-api throws on a failed status
  // Added after the thread-safe function so that at teardown it runs first (hooks run in reverse).
  Check(env, napi_add_env_cleanup_hook(env, &NativeTransport::OnEnvCleanup, this), "napi_add_env_cleanup_hook");
  hookAdded_ = true;
  try {
    loop_->Start(std::move(hello));
  } catch (const std::system_error& e) {
    Shutdown(env);
    throw Napi::Error::New(env, std::string("cannot start the I/O thread: ") + e.what());
  }
  running_ = true;
  // While the thread runs, the JS object must outlive any reference the application holds.
  ObjectWrap::Ref();
  return env.Undefined();
}

Napi::Value NativeTransport::Push(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool wantDrain = info.Length() > 2 && info[2].ToBoolean().Value();
  IoLoop::PushResult r;
  if (info[0].IsBuffer()) {
    // The first `byteLength` bytes of the Buffer, read (and copied only if queued) during the call.
    auto buf = info[0].As<Napi::Buffer<char>>();
    size_t len = buf.Length();
    if (info[1].IsNumber()) {
      const double hint = info[1].As<Napi::Number>().DoubleValue();
      if (hint >= 0 && hint < static_cast<double>(len)) len = static_cast<size_t>(hint);
    }
    r = loop_->PushTelemetry(buf.Data(), len, nullptr, wantDrain);
  } else {
    std::string frames = StringBytes(info[0], info[1]);
    r = loop_->PushTelemetry(frames.data(), frames.size(), &frames, wantDrain);
  }
  status_[0] = static_cast<double>(r.count);
  status_[1] = static_cast<double>(r.bytes);
  status_[2] = static_cast<double>(r.droppedStop);
  return Napi::Number::New(env, static_cast<double>(r.dropped));
}

Napi::Value NativeTransport::Call(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "frame must be a string");
  const bool report = info.Length() > 1 && info[1].ToBoolean().Value();
  return Napi::Boolean::New(env, loop_->PushCall(info[0].As<Napi::String>().Utf8Value(), report));
}

Napi::Value NativeTransport::Hold(const Napi::CallbackInfo& info) {
  loop_->Hold(info.Length() > 0 && info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

Napi::Value NativeTransport::Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "stop(goodbye: string, timeoutMs: number)");
  }
  if (!running_) return Napi::Number::New(env, static_cast<double>(loop_->DropQueued()));
  const double timeout = info[1].As<Napi::Number>().DoubleValue();
  loop_->RequestStop(info[0].As<Napi::String>().Utf8Value(),
                     static_cast<uint32_t>(timeout < 0 ? 0 : timeout > 4e9 ? 4e9 : timeout));
  // The thread ends with a 'stopped' event; JavaScript then calls join().
  return Napi::Number::New(env, -1);
}

Napi::Value NativeTransport::Join(const Napi::CallbackInfo& info) {
  Shutdown(info.Env());
  return info.Env().Undefined();
}

void NativeTransport::Shutdown(Napi::Env env) {
  loop_->Join();
  inbound_.Reset();
  inboundSize_ = 0;
  if (!tsfnLive_) return;
  tsfnLive_ = false;
  Check(env, tsfn_.Release(), "napi_release_threadsafe_function");
  tsfn_ = EventFunction();
  if (hookAdded_) {
    hookAdded_ = false;
    Check(env, napi_remove_env_cleanup_hook(env, &NativeTransport::OnEnvCleanup, this), "napi_remove_env_cleanup_hook");
  }
  if (running_) {
    running_ = false;
    ObjectWrap::Unref();
  }
}

void NativeTransport::OnEnvCleanup(void* arg) {
  // The environment (a worker, or the main thread at exit) is going away: end the thread now.
  auto* self = static_cast<NativeTransport*>(arg);
  self->hookAdded_ = false;
  self->loop_->Abort();
  if (self->tsfnLive_) {
    self->tsfnLive_ = false;
    self->tsfn_.Abort();
    self->tsfn_ = EventFunction();
  }
  self->running_ = false;
}

Napi::Value NativeTransport::ReadCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "out must be a Float64Array");
  auto out = info[0].As<Napi::TypedArray>();
  if (out.TypedArrayType() != napi_float64_array || out.ElementLength() < kCounterFields) {
    throw Napi::TypeError::New(env, "out must be a Float64Array of " + std::to_string(kCounterFields) + " elements");
  }
  Counters c;
  size_t buffered = 0;
  uint64_t bufferedBytes = 0;
  size_t callsBuffered = 0;
  loop_->ReadCounters(c, buffered, bufferedBytes, callsBuffered);
  double* d = out.As<Napi::Float64Array>().Data();
  // In IOTTLY_COUNTER_FIELDS order: running totals from `c`, gauges from the locals of the same name.
#define IOTTLY_KEPT_VALUE(name) static_cast<double>(c.name),
#define IOTTLY_LIVE_VALUE(name) static_cast<double>(name),
  const double values[kCounterFields] = {IOTTLY_COUNTER_FIELDS(IOTTLY_KEPT_VALUE, IOTTLY_LIVE_VALUE)};
#undef IOTTLY_KEPT_VALUE
#undef IOTTLY_LIVE_VALUE
  std::memcpy(d, values, sizeof values);
  return env.Undefined();
}

Napi::Value NativeTransport::Consumed(const Napi::CallbackInfo& info) {
  loop_->InboundConsumed();
  return info.Env().Undefined();
}

Napi::Value NativeTransport::Ref(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  refed_ = true;
  if (tsfnLive_) tsfn_.Ref(env);
  return env.Undefined();
}

Napi::Value NativeTransport::Unref(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  refed_ = false;
  if (tsfnLive_) tsfn_.Unref(env);
  return env.Undefined();
}

void NativeTransport::DeliverEvents(Napi::Env env, Napi::Function callback, NativeTransport* self, void*) {
  if (env == nullptr || self == nullptr) return;  // the environment is being torn down
  bool stopped = false;
  uint64_t stoppedDropped = 0;
  std::vector<IoEvent> events;
  try {
    events = self->loop_->TakeEvents(stopped, stoppedDropped);
  } catch (...) {
    return;  // TakeEvents swaps: it cannot fail but for an allocator gone mad
  }
  // After the cleanup hook ran, JavaScript can no longer be called: the events die with the env.
  if ((events.empty() && !stopped) || !self->tsfnLive_) return;
  try {
    if (stopped && TestFaultFires(TestFault::kDeliver)) throw std::bad_alloc();
    self->CallWithEvents(env, callback, events, stopped, stoppedDropped);
  } catch (...) {
    // Building the list failed (out of memory, or the environment is stopping; a C++ exception
    // escaping into Node-API would be std::terminate). The list is built before JavaScript is
    // called, so nothing was delivered: put it all back for another call. Above all 'stopped' must
    // not be lost, or stop() would never resolve and the thread never be joined.
    self->loop_->Requeue(std::move(events), stopped, stoppedDropped);
  }
  // Reading resumes when JavaScript calls consumed(), from its next turn of the event loop: resumed
  // here, the I/O thread's next batch would often be queued before this returns, and Node runs up to
  // 1 000 queued calls back to back, so a flood would starve the application's timers and I/O.
}

Napi::Buffer<char> NativeTransport::InboundBuffer(Napi::Env env, size_t bytes) {
  if (inbound_.IsEmpty() || inboundSize_ < bytes) {
    // Doubled, so that deliveries growing a little at a time reallocate only a few times, but never
    // past the largest delivery the I/O thread can make: its read-ahead bound (maxFrameBytes +
    // 256 KiB), one more read (64 KiB) and a partial line carried from earlier reads (maxFrameBytes).
    // In 64 bits: 2 * maxFrameBytes overflows a 32-bit size_t once maxFrameBytes passes 2 GiB.
    constexpr uint64_t kStep = 64 * 1024;
    const uint64_t largest = 2 * static_cast<uint64_t>(maxFrameBytes_) + 320 * 1024;
    const uint64_t wanted = std::max<uint64_t>((static_cast<uint64_t>(bytes) + kStep - 1) / kStep * kStep,
                                               std::min<uint64_t>(2 * static_cast<uint64_t>(inboundSize_), largest));
    const size_t size = static_cast<size_t>(std::min<uint64_t>(wanted, std::numeric_limits<size_t>::max()));
    inbound_ = Napi::Persistent(Napi::Buffer<char>::New(env, size));
    inboundSize_ = size;
  }
  return inbound_.Value();
}

void NativeTransport::CallWithEvents(Napi::Env env, Napi::Function callback, std::vector<IoEvent>& events, bool stopped,
                                     uint64_t stoppedDropped) {
  // Flat list: [type, a, b, type, a, b, ...]; for frames a = offset of the lines in the inbound
  // Buffer (the callback's second argument), b = Uint32Array of their lengths.
  size_t inboundBytes = 0;
  for (const IoEvent& e : events) {
    if (e.type == IoEvent::kFrames) inboundBytes += e.bytes.size();
  }
  Napi::Value inbound = env.Undefined();
  char* inboundData = nullptr;
  if (inboundBytes > 0) {
    Napi::Buffer<char> buffer = InboundBuffer(env, inboundBytes);
    inbound = buffer;
    inboundData = buffer.Data();
  }
  size_t offset = 0;
  Napi::Array list = Napi::Array::New(env, (events.size() + (stopped ? 1 : 0)) * 3);
  uint32_t i = 0;
  for (IoEvent& e : events) {
    list.Set(i++, Napi::Number::New(env, e.type));
    if (e.type == IoEvent::kFrames) {
      std::memcpy(inboundData + offset, e.bytes.data(), e.bytes.size());
      list.Set(i++, Napi::Number::New(env, static_cast<double>(offset)));
      offset += e.bytes.size();
      auto sizes = Napi::Uint32Array::New(env, e.sizes.size());
      std::memcpy(sizes.Data(), e.sizes.data(), e.sizes.size() * sizeof(uint32_t));
      list.Set(i++, sizes);
    } else if (e.type == IoEvent::kUnlink || e.type == IoEvent::kConnectError) {
      list.Set(i++, Napi::Number::New(env, e.error));
      list.Set(i++, Napi::String::New(env, e.syscall));
    } else if (e.type == IoEvent::kOversize) {
      list.Set(i++, Napi::Number::New(env, static_cast<double>(e.count)));
      list.Set(i++, Napi::Number::New(env, static_cast<double>(e.lines)));
    } else {
      list.Set(i++, Napi::Number::New(env, static_cast<double>(e.count)));
      list.Set(i++, env.Undefined());
    }
  }
  if (stopped) {
    // Last: the thread has ended, and JavaScript joins it on this event.
    list.Set(i++, Napi::Number::New(env, IoEvent::kStopped));
    list.Set(i++, Napi::Number::New(env, static_cast<double>(stoppedDropped)));
    list.Set(i++, env.Undefined());
  }
  napi_value argv[2] = {list, inbound};
  napi_value result;
  const napi_status status = napi_call_function(env, env.Undefined(), callback, 2, argv, &result);
  // napi_pending_exception: the callback threw; Node reports it as uncaught once we return. Any
  // other failure means the environment can no longer run JavaScript, so there is no one to tell.
  (void)status;
}

}  // namespace iottly
