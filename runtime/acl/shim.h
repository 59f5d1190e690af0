// C side of the AscendCL binding: a table of function pointers filled by
// dlopen/dlsym, and one small wrapper per function because cgo cannot call a
// C function pointer directly.
//
// No CANN header is included, so the package builds on machines without
// CANN. The typedefs below restate the published AscendCL declarations
// (acl_base_rt.h, acl_rt.h, acl_mdl.h); every opaque handle is a void
// pointer on this side.

#ifndef MMADAC_ACL_SHIM_H
#define MMADAC_ACL_SHIM_H

#include <stddef.h>
#include <stdint.h>

typedef int macl_error;      // aclError
typedef int macl_dtype;      // aclDataType

// Mirror of aclmdlIODims: 128 + 8 + 1024 = 1160 bytes on LP64.
typedef struct {
	char name[128];
	size_t dimCount;
	int64_t dims[128];
} macl_iodims;

// X-macro over every symbol the binding requires: name, return type and
// parameter list exactly as published.
#define MACL_REQUIRED_SYMBOLS(X)                                                        \
	X(aclInit, macl_error, (const char *))                                                 \
	X(aclFinalize, macl_error, (void))                                                     \
	X(aclrtSetDevice, macl_error, (int32_t))                                               \
	X(aclrtResetDevice, macl_error, (int32_t))                                             \
	X(aclrtCreateContext, macl_error, (void **, int32_t))                                  \
	X(aclrtDestroyContext, macl_error, (void *))                                           \
	X(aclrtCreateStream, macl_error, (void **))                                            \
	X(aclrtDestroyStream, macl_error, (void *))                                            \
	X(aclrtMalloc, macl_error, (void **, size_t, int))                                     \
	X(aclrtFree, macl_error, (void *))                                                     \
	X(aclrtMemcpy, macl_error, (void *, size_t, const void *, size_t, int))                \
	X(aclCreateDataBuffer, void *, (void *, size_t))                                       \
	X(aclDestroyDataBuffer, macl_error, (const void *))                                    \
	X(aclmdlCreateDataset, void *, (void))                                                 \
	X(aclmdlDestroyDataset, macl_error, (const void *))                                    \
	X(aclmdlAddDatasetBuffer, macl_error, (void *, void *))                                \
	X(aclmdlLoadFromFile, macl_error, (const char *, uint32_t *))                          \
	X(aclmdlUnload, macl_error, (uint32_t))                                                \
	X(aclmdlCreateDesc, void *, (void))                                                    \
	X(aclmdlGetDesc, macl_error, (void *, uint32_t))                                       \
	X(aclmdlDestroyDesc, macl_error, (void *))                                             \
	X(aclmdlGetNumInputs, size_t, (void *))                                                \
	X(aclmdlGetNumOutputs, size_t, (void *))                                               \
	X(aclmdlGetInputSizeByIndex, size_t, (void *, size_t))                                 \
	X(aclmdlGetOutputSizeByIndex, size_t, (void *, size_t))                                \
	X(aclmdlGetInputDims, macl_error, (const void *, size_t, macl_iodims *))               \
	X(aclmdlGetOutputDims, macl_error, (const void *, size_t, macl_iodims *))              \
	X(aclmdlGetCurOutputDims, macl_error, (const void *, size_t, macl_iodims *))           \
	X(aclmdlGetInputNameByIndex, const char *, (const void *, size_t))                     \
	X(aclmdlGetOutputNameByIndex, const char *, (const void *, size_t))                    \
	X(aclmdlGetInputDataType, macl_dtype, (const void *, size_t))                          \
	X(aclmdlGetOutputDataType, macl_dtype, (const void *, size_t))                         \
	X(aclmdlGetInputIndexByName, macl_error, (const void *, const char *, size_t *))       \
	X(aclmdlExecute, macl_error, (uint32_t, const void *, void *))                         \
	X(aclmdlSetInputDynamicDims, macl_error,                                               \
	  (uint32_t, void *, size_t, const macl_iodims *))                                     \
	X(aclmdlGetInputDynamicGearCount, macl_error, (const void *, size_t, size_t *))        \
	X(aclmdlGetInputDynamicDims, macl_error,                                               \
	  (const void *, size_t, macl_iodims *, size_t))

// Function pointers resolved from the library. aclGetRecentErrMsg is
// optional: older runtimes lack it, and a missing message is no reason to
// refuse the library.
typedef struct {
#define MACL_FIELD(name, ret, params) ret(*name) params;
	MACL_REQUIRED_SYMBOLS(MACL_FIELD)
#undef MACL_FIELD
	const char *(*aclGetRecentErrMsg)(void);
} macl_api;

// Results of macl_open.
enum {
	MACL_OPEN_OK = 0,
	MACL_OPEN_DLOPEN_FAILED = 1,
	MACL_OPEN_MISSING_SYMBOL = 2,
};

// macl_dlopen opens path with RTLD_NOW | RTLD_LOCAL. On failure it returns
// NULL and copies dlerror() into err.
void *macl_dlopen(const char *path, char *err, size_t err_len);

// macl_resolve fills api from handle. It returns MACL_OPEN_OK, or
// MACL_OPEN_MISSING_SYMBOL with *missing set to the first absent name.
int macl_resolve(void *handle, macl_api *api, const char **missing);

void macl_dlclose(void *handle);

// One wrapper per function; the first argument is the resolved table.
macl_error macl_aclInit(const macl_api *a, const char *config);
macl_error macl_aclFinalize(const macl_api *a);
macl_error macl_aclrtSetDevice(const macl_api *a, int32_t device);
macl_error macl_aclrtResetDevice(const macl_api *a, int32_t device);
macl_error macl_aclrtCreateContext(const macl_api *a, void **ctx, int32_t device);
macl_error macl_aclrtDestroyContext(const macl_api *a, void *ctx);
macl_error macl_aclrtCreateStream(const macl_api *a, void **stream);
macl_error macl_aclrtDestroyStream(const macl_api *a, void *stream);
macl_error macl_aclrtMalloc(const macl_api *a, void **ptr, size_t size, int policy);
macl_error macl_aclrtFree(const macl_api *a, void *ptr);
macl_error macl_aclrtMemcpy(const macl_api *a, void *dst, size_t dst_max, const void *src,
                            size_t count, int kind);
void *macl_aclCreateDataBuffer(const macl_api *a, void *data, size_t size);
macl_error macl_aclDestroyDataBuffer(const macl_api *a, void *buf);
void *macl_aclmdlCreateDataset(const macl_api *a);
macl_error macl_aclmdlDestroyDataset(const macl_api *a, void *ds);
macl_error macl_aclmdlAddDatasetBuffer(const macl_api *a, void *ds, void *buf);
macl_error macl_aclmdlLoadFromFile(const macl_api *a, const char *path, uint32_t *id);
macl_error macl_aclmdlUnload(const macl_api *a, uint32_t id);
void *macl_aclmdlCreateDesc(const macl_api *a);
macl_error macl_aclmdlGetDesc(const macl_api *a, void *desc, uint32_t id);
macl_error macl_aclmdlDestroyDesc(const macl_api *a, void *desc);
size_t macl_aclmdlGetNumInputs(const macl_api *a, void *desc);
size_t macl_aclmdlGetNumOutputs(const macl_api *a, void *desc);
size_t macl_aclmdlGetInputSizeByIndex(const macl_api *a, void *desc, size_t i);
size_t macl_aclmdlGetOutputSizeByIndex(const macl_api *a, void *desc, size_t i);
macl_error macl_aclmdlGetInputDims(const macl_api *a, void *desc, size_t i, macl_iodims *d);
macl_error macl_aclmdlGetOutputDims(const macl_api *a, void *desc, size_t i, macl_iodims *d);
macl_error macl_aclmdlGetCurOutputDims(const macl_api *a, void *desc, size_t i,
                                       macl_iodims *d);
const char *macl_aclmdlGetInputNameByIndex(const macl_api *a, void *desc, size_t i);
const char *macl_aclmdlGetOutputNameByIndex(const macl_api *a, void *desc, size_t i);
macl_dtype macl_aclmdlGetInputDataType(const macl_api *a, void *desc, size_t i);
macl_dtype macl_aclmdlGetOutputDataType(const macl_api *a, void *desc, size_t i);
macl_error macl_aclmdlGetInputIndexByName(const macl_api *a, void *desc, const char *name,
                                          size_t *index);
macl_error macl_aclmdlExecute(const macl_api *a, uint32_t id, void *in, void *out);
macl_error macl_aclmdlSetInputDynamicDims(const macl_api *a, uint32_t id, void *ds,
                                          size_t index, const macl_iodims *dims);
macl_error macl_aclmdlGetInputDynamicGearCount(const macl_api *a, void *desc,
                                               size_t *count);
macl_error macl_aclmdlGetInputDynamicDims(const macl_api *a, void *desc, macl_iodims *dims,
                                          size_t count);
// Returns NULL when the library has no aclGetRecentErrMsg.
const char *macl_aclGetRecentErrMsg(const macl_api *a);

#endif
