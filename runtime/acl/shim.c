// dlopen/dlsym of libascendcl.so and the call wrappers declared in shim.h.

#include "shim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

void *macl_dlopen(const char *path, char *err, size_t err_len) {
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		const char *msg = dlerror();
		snprintf(err, err_len, "%s", msg != NULL ? msg : "dlopen failed");
	}
	return handle;
}

void macl_dlclose(void *handle) { dlclose(handle); }

int macl_resolve(void *handle, macl_api *api, const char **missing) {
	static const struct {
		const char *name;
		size_t offset;
	} required[] = {
#define MACL_ENTRY(name, ret, params) {#name, offsetof(macl_api, name)},
	    MACL_REQUIRED_SYMBOLS(MACL_ENTRY)
#undef MACL_ENTRY
	};
	memset(api, 0, sizeof(*api));
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		// dlsym on a dlopen handle also searches the library's DT_NEEDED
		// dependencies, which matters for CANN 8.5 where the aclmdl*
		// functions live in libacl_mdl.so behind libascendcl.so.
		void *sym = dlsym(handle, required[i].name);
		if (sym == NULL) {
			*missing = required[i].name;
			return MACL_OPEN_MISSING_SYMBOL;
		}
		memcpy((char *)api + required[i].offset, &sym, sizeof(sym));
	}
	void *recent = dlsym(handle, "aclGetRecentErrMsg");
	memcpy(&api->aclGetRecentErrMsg, &recent, sizeof(recent));
	return MACL_OPEN_OK;
}

macl_error macl_aclInit(const macl_api *a, const char *config) { return a->aclInit(config); }
macl_error macl_aclFinalize(const macl_api *a) { return a->aclFinalize(); }
macl_error macl_aclrtSetDevice(const macl_api *a, int32_t device) {
	return a->aclrtSetDevice(device);
}
macl_error macl_aclrtResetDevice(const macl_api *a, int32_t device) {
	return a->aclrtResetDevice(device);
}
macl_error macl_aclrtCreateContext(const macl_api *a, void **ctx, int32_t device) {
	return a->aclrtCreateContext(ctx, device);
}
macl_error macl_aclrtDestroyContext(const macl_api *a, void *ctx) {
	return a->aclrtDestroyContext(ctx);
}
macl_error macl_aclrtCreateStream(const macl_api *a, void **stream) {
	return a->aclrtCreateStream(stream);
}
macl_error macl_aclrtDestroyStream(const macl_api *a, void *stream) {
	return a->aclrtDestroyStream(stream);
}
macl_error macl_aclrtMalloc(const macl_api *a, void **ptr, size_t size, int policy) {
	return a->aclrtMalloc(ptr, size, policy);
}
macl_error macl_aclrtFree(const macl_api *a, void *ptr) { return a->aclrtFree(ptr); }
macl_error macl_aclrtMemcpy(const macl_api *a, void *dst, size_t dst_max, const void *src,
                            size_t count, int kind) {
	return a->aclrtMemcpy(dst, dst_max, src, count, kind);
}
void *macl_aclCreateDataBuffer(const macl_api *a, void *data, size_t size) {
	return a->aclCreateDataBuffer(data, size);
}
macl_error macl_aclDestroyDataBuffer(const macl_api *a, void *buf) {
	return a->aclDestroyDataBuffer(buf);
}
void *macl_aclmdlCreateDataset(const macl_api *a) { return a->aclmdlCreateDataset(); }
macl_error macl_aclmdlDestroyDataset(const macl_api *a, void *ds) {
	return a->aclmdlDestroyDataset(ds);
}
macl_error macl_aclmdlAddDatasetBuffer(const macl_api *a, void *ds, void *buf) {
	return a->aclmdlAddDatasetBuffer(ds, buf);
}
macl_error macl_aclmdlLoadFromFile(const macl_api *a, const char *path, uint32_t *id) {
	return a->aclmdlLoadFromFile(path, id);
}
macl_error macl_aclmdlUnload(const macl_api *a, uint32_t id) { return a->aclmdlUnload(id); }
void *macl_aclmdlCreateDesc(const macl_api *a) { return a->aclmdlCreateDesc(); }
macl_error macl_aclmdlGetDesc(const macl_api *a, void *desc, uint32_t id) {
	return a->aclmdlGetDesc(desc, id);
}
macl_error macl_aclmdlDestroyDesc(const macl_api *a, void *desc) {
	return a->aclmdlDestroyDesc(desc);
}
size_t macl_aclmdlGetNumInputs(const macl_api *a, void *desc) {
	return a->aclmdlGetNumInputs(desc);
}
size_t macl_aclmdlGetNumOutputs(const macl_api *a, void *desc) {
	return a->aclmdlGetNumOutputs(desc);
}
size_t macl_aclmdlGetInputSizeByIndex(const macl_api *a, void *desc, size_t i) {
	return a->aclmdlGetInputSizeByIndex(desc, i);
}
size_t macl_aclmdlGetOutputSizeByIndex(const macl_api *a, void *desc, size_t i) {
	return a->aclmdlGetOutputSizeByIndex(desc, i);
}
macl_error macl_aclmdlGetInputDims(const macl_api *a, void *desc, size_t i, macl_iodims *d) {
	return a->aclmdlGetInputDims(desc, i, d);
}
macl_error macl_aclmdlGetOutputDims(const macl_api *a, void *desc, size_t i, macl_iodims *d) {
	return a->aclmdlGetOutputDims(desc, i, d);
}
macl_error macl_aclmdlGetCurOutputDims(const macl_api *a, void *desc, size_t i,
                                       macl_iodims *d) {
	return a->aclmdlGetCurOutputDims(desc, i, d);
}
const char *macl_aclmdlGetInputNameByIndex(const macl_api *a, void *desc, size_t i) {
	return a->aclmdlGetInputNameByIndex(desc, i);
}
const char *macl_aclmdlGetOutputNameByIndex(const macl_api *a, void *desc, size_t i) {
	return a->aclmdlGetOutputNameByIndex(desc, i);
}
macl_dtype macl_aclmdlGetInputDataType(const macl_api *a, void *desc, size_t i) {
	return a->aclmdlGetInputDataType(desc, i);
}
macl_dtype macl_aclmdlGetOutputDataType(const macl_api *a, void *desc, size_t i) {
	return a->aclmdlGetOutputDataType(desc, i);
}
macl_error macl_aclmdlGetInputIndexByName(const macl_api *a, void *desc, const char *name,
                                          size_t *index) {
	return a->aclmdlGetInputIndexByName(desc, name, index);
}
macl_error macl_aclmdlExecute(const macl_api *a, uint32_t id, void *in, void *out) {
	return a->aclmdlExecute(id, in, out);
}
macl_error macl_aclmdlSetInputDynamicDims(const macl_api *a, uint32_t id, void *ds,
                                          size_t index, const macl_iodims *dims) {
	return a->aclmdlSetInputDynamicDims(id, ds, index, dims);
}

// The index argument of both gear queries is reserved and must be
// (size_t)-1; the runtime returns ACL_ERROR_INVALID_PARAM for any other value.
macl_error macl_aclmdlGetInputDynamicGearCount(const macl_api *a, void *desc,
                                               size_t *count) {
	return a->aclmdlGetInputDynamicGearCount(desc, (size_t)-1, count);
}
macl_error macl_aclmdlGetInputDynamicDims(const macl_api *a, void *desc, macl_iodims *dims,
                                          size_t count) {
	return a->aclmdlGetInputDynamicDims(desc, (size_t)-1, dims, count);
}

const char *macl_aclGetRecentErrMsg(const macl_api *a) {
	if (a->aclGetRecentErrMsg == NULL) {
		return NULL;
	}
	return a->aclGetRecentErrMsg();
}
