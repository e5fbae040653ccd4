#include <napi.h>

#include "native_transport.h"

namespace iottly {

// What src/transport/addon.ts expects (NATIVE_ABI_VERSION); raised whenever the interface between them changes.
constexpr int kAbiVersion = 3;

// Per-environment state of the addon: each main thread or worker that loads it gets its own.
class Binding : public Napi::Addon<Binding> {
 public:
  Binding(Napi::Env env, Napi::Object exports) {
    transport_ = Napi::Persistent(NativeTransport::Init(env));
    DefineAddon(exports, {InstanceValue("Transport", transport_.Value(), napi_enumerable),
                          InstanceValue("abiVersion", Napi::Number::New(env, kAbiVersion), napi_enumerable)});
  }

 private:
  Napi::FunctionReference transport_;
};

}  // namespace iottly

using IottlyBinding = iottly::Binding;
NODE_API_NAMED_ADDON(iottly_native, IottlyBinding)
