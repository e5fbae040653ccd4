#pragma once

#include <napi.h>

#include <memory>

#include "io_loop.h"

namespace iottly {

// The JavaScript face of one transport: hands frames to its IoLoop and events back through a
// thread-safe function, one call per batch of events. Declared to TypeScript in src/transport/addon.ts.
class NativeTransport : public Napi::ObjectWrap<NativeTransport> {
 public:
  static Napi::Function Init(Napi::Env env);

  explicit NativeTransport(const Napi::CallbackInfo& info);
  ~NativeTransport() override;
  NativeTransport(const NativeTransport&) = delete;
  NativeTransport& operator=(const NativeTransport&) = delete;
  NativeTransport(NativeTransport&&) = delete;
  NativeTransport& operator=(NativeTransport&&) = delete;

 private:
  static void DeliverEvents(Napi::Env env, Napi::Function callback, NativeTransport* self, void* unused);
  static void OnEnvCleanup(void* self);
  // Calls JavaScript with `events`, then 'stopped' when `stopped` is set.
  void CallWithEvents(Napi::Env env, Napi::Function callback, std::vector<IoEvent>& events, bool stopped,
                      uint64_t stoppedDropped);
  // The Buffer that inbound frames are copied into, at least `bytes` long.
  Napi::Buffer<char> InboundBuffer(Napi::Env env, size_t bytes);

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Push(const Napi::CallbackInfo& info);
  Napi::Value Call(const Napi::CallbackInfo& info);
  Napi::Value Hold(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Join(const Napi::CallbackInfo& info);
  Napi::Value ReadCounters(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Consumed(const Napi::CallbackInfo& info);

  void Shutdown(Napi::Env env);

  using EventFunction = Napi::TypedThreadSafeFunction<NativeTransport, void, &NativeTransport::DeliverEvents>;

  std::unique_ptr<IoLoop> loop_;
  EventFunction tsfn_;
  Napi::Reference<Napi::Float64Array> statusRef_;
  // Inbound frames reach JavaScript as views of this one Buffer, reused for every delivery: a new
  // Buffer per batch is memory V8 does not count towards its heap, so under a flood hundreds of
  // them piled up between collections. Grows to the largest delivery; released by join().
  Napi::Reference<Napi::Buffer<char>> inbound_;
  size_t inboundSize_ = 0;
  size_t maxFrameBytes_ = 0;
  double* status_ = nullptr;
  napi_env env_ = nullptr;
  bool hookAdded_ = false;
  bool tsfnLive_ = false;
  bool running_ = false;
  bool refed_ = true;
};

}  // namespace iottly
