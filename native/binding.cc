#include <napi.h>

#include <cstdint>

#include "native_transport.h"
#include "surface.h"

namespace iottly {

// What src/transport/addon.ts expects (NATIVE_ABI_VERSION); raised whenever the interface between them changes.
constexpr int kAbiVersion = 4;

namespace {

// { link: 1, unlink: 2, ... }: IOTTLY_EVENTS, for the loader to compare with its own table.
Napi::Object EventTable(Napi::Env env) {
  Napi::Object table = Napi::Object::New(env);
#define IOTTLY_EVENT_ENTRY(enumerator, js, code) table.Set(#js, Napi::Number::New(env, code));
  IOTTLY_EVENTS(IOTTLY_EVENT_ENTRY)
#undef IOTTLY_EVENT_ENTRY
  table.Freeze();
  return table;
}

// ['written', 'bytesWritten', ...]: the names of the values counters() writes, in its order.
Napi::Array CounterFields(Napi::Env env) {
  Napi::Array fields = Napi::Array::New(env);
  uint32_t i = 0;
#define IOTTLY_COUNTER_NAME(name) fields.Set(i++, Napi::String::New(env, #name));
  IOTTLY_COUNTER_FIELDS(IOTTLY_COUNTER_NAME, IOTTLY_COUNTER_NAME)
#undef IOTTLY_COUNTER_NAME
  fields.Freeze();
  return fields;
}

}  // namespace

// Per-environment state of the addon: each main thread or worker that loads it gets its own.
class Binding : public Napi::Addon<Binding> {
 public:
  Binding(Napi::Env env, Napi::Object exports) {
    transport_ = Napi::Persistent(NativeTransport::Init(env));
    DefineAddon(exports, {InstanceValue("Transport", transport_.Value(), napi_enumerable),
                          InstanceValue("abiVersion", Napi::Number::New(env, kAbiVersion), napi_enumerable),
                          InstanceValue("events", EventTable(env), napi_enumerable),
                          InstanceValue("counterFields", CounterFields(env), napi_enumerable)});
  }

 private:
  Napi::FunctionReference transport_;
};

}  // namespace iottly

using IottlyBinding = iottly::Binding;
NODE_API_NAMED_ADDON(iottly_native, IottlyBinding)
