// GemPool as a C++ IPluginV3: the production form of Lab 05's plugin (no Python at build or run time).
//
// Same contract as the Python plugin (trtlab/plugins/trt.py) and the tensorrt.plugin definition:
//   name "GemPool", version "1", namespace "trtlab"; fields p, eps (float32); N x C x H x W float32 -> N x C x 1 x 1.
// The kernel is the one Lab 05 tests (../gem_pool.cu, included below), so Python and C++ run the same code.
//
// Build:   cmake -S . -B build -DTENSORRT_ROOT=/path/to/TensorRT && cmake --build build
// Use:     trtexec --onnx=resnet18_gem.onnx --dynamicPlugins=build/libgem_pool_plugin.so
//          or, in Python: trt.get_plugin_registry().load_library("build/libgem_pool_plugin.so")
// TensorRT loads the library through getCreators() (and setLoggerFinder()) at the bottom of this file.

#include "NvInfer.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gem_pool.cu"  // gem_pool_f32: one warp per (n, c) plane

using namespace nvinfer1;

namespace
{
constexpr char const* kNAME = "GemPool";
constexpr char const* kVERSION = "1";
constexpr char const* kNAMESPACE = "trtlab";
constexpr int32_t kBLOCK = 256;  // a multiple of 32: whole warps per block

void report(char const* where, std::exception const& e) noexcept
{
    std::fprintf(stderr, "[GemPool] %s failed: %s\n", where, e.what());
}
} // namespace

class GemPoolPlugin : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild, public IPluginV3OneRuntime
{
public:
    GemPoolPlugin(float p, float eps)
        : mP(p)
        , mEps(eps)
    {
    }

    // ---- IPluginV3: which capability object answers which phase
    IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override
    {
        switch (type)
        {
        case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
        case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
        case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
        }
        return nullptr;
    }

    IPluginV3* clone() noexcept override
    {
        try
        {
            return new GemPoolPlugin(*this);
        }
        catch (std::exception const& e)
        {
            report("clone", e);
        }
        return nullptr;
    }

    // ---- IPluginV3OneCore: identity (what the ONNX parser matched: op_type, plugin_version, plugin_namespace)
    char const* getPluginName() const noexcept override { return kNAME; }
    char const* getPluginVersion() const noexcept override { return kVERSION; }
    char const* getPluginNamespace() const noexcept override { return kNAMESPACE; }

    // ---- IPluginV3OneBuild: types, shapes, formats (Lab 05's shape-function exercise, in C++)
    int32_t getNbOutputs() const noexcept override { return 1; }

    int32_t getOutputDataTypes(
        DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept override
    {
        outputTypes[0] = inputTypes[0];
        return 0;
    }

    int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, DimsExprs* outputs, int32_t nbOutputs, IExprBuilder& exprBuilder) noexcept override
    {
        if (nbInputs != 1 || inputs[0].nbDims != 4)
        {
            return -1;  // GemPool pools N x C x H x W feature maps only
        }
        outputs[0].nbDims = 4;
        outputs[0].d[0] = inputs[0].d[0];  // batch: symbolic, passed through
        outputs[0].d[1] = inputs[0].d[1];  // channels
        outputs[0].d[2] = exprBuilder.constant(1);
        outputs[0].d[3] = exprBuilder.constant(1);
        return 0;
    }

    bool supportsFormatCombination(
        int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept override
    {
        PluginTensorDesc const& desc = inOut[pos].desc;
        return desc.format == TensorFormat::kLINEAR && desc.type == DataType::kFLOAT;  // FP32 in, FP32 out
    }

    int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override
    {
        return 0;
    }

    size_t getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override
    {
        return 0;
    }

    // ---- IPluginV3OneRuntime: run
    int32_t onShapeChange(
        PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept override
    {
        return 0;
    }

    int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc, void const* const* inputs,
        void* const* outputs, void* workspace, cudaStream_t stream) noexcept override
    {
        Dims const& d = inputDesc[0].dims;
        int32_t const planes = static_cast<int32_t>(d.d[0] * d.d[1]);
        int32_t const hw = static_cast<int32_t>(d.d[2] * d.d[3]);
        int32_t const grid = static_cast<int32_t>((static_cast<int64_t>(planes) * 32 + kBLOCK - 1) / kBLOCK);
        gem_pool_f32<<<grid, kBLOCK, 0, stream>>>(static_cast<float const*>(inputs[0]), mP, mEps, planes, hw,
            static_cast<float*>(outputs[0]));
        return cudaPeekAtLastError() == cudaSuccess ? 0 : -1;
    }

    IPluginV3* attachToContext(IPluginResourceContext* context) noexcept override { return clone(); }

    PluginFieldCollection const* getFieldsToSerialize() noexcept override
    {
        mFields = {PluginField("p", &mP, PluginFieldType::kFLOAT32, 1),
            PluginField("eps", &mEps, PluginFieldType::kFLOAT32, 1)};
        mCollection.nbFields = static_cast<int32_t>(mFields.size());
        mCollection.fields = mFields.data();
        return &mCollection;
    }

private:
    float mP;
    float mEps;
    std::vector<PluginField> mFields;
    PluginFieldCollection mCollection{};
};

class GemPoolPluginCreator : public IPluginCreatorV3One
{
public:
    GemPoolPluginCreator()
    {
        mAttributes = {PluginField("p", nullptr, PluginFieldType::kFLOAT32, 1),
            PluginField("eps", nullptr, PluginFieldType::kFLOAT32, 1)};
        mCollection.nbFields = static_cast<int32_t>(mAttributes.size());
        mCollection.fields = mAttributes.data();
    }

    char const* getPluginName() const noexcept override { return kNAME; }
    char const* getPluginVersion() const noexcept override { return kVERSION; }
    char const* getPluginNamespace() const noexcept override { return kNAMESPACE; }
    PluginFieldCollection const* getFieldNames() noexcept override { return &mCollection; }

    // The ONNX parser calls this with the node's attributes (p, eps, and the plugin_* strings it consumed).
    IPluginV3* createPlugin(char const* name, PluginFieldCollection const* fc, TensorRTPhase phase) noexcept override
    {
        try
        {
            float p = 3.0F;
            float eps = 1e-6F;
            for (int32_t i = 0; i < fc->nbFields; ++i)
            {
                std::string_view const field = fc->fields[i].name;
                if (field == "p" && fc->fields[i].type == PluginFieldType::kFLOAT32)
                {
                    p = *static_cast<float const*>(fc->fields[i].data);
                }
                else if (field == "eps" && fc->fields[i].type == PluginFieldType::kFLOAT32)
                {
                    eps = *static_cast<float const*>(fc->fields[i].data);
                }
            }
            if (!(p > 0.0F))
            {
                return nullptr;  // p must be positive (1 = average pooling)
            }
            return new GemPoolPlugin(p, eps);
        }
        catch (std::exception const& e)
        {
            report("createPlugin", e);
        }
        return nullptr;
    }

private:
    std::vector<PluginField> mAttributes;
    PluginFieldCollection mCollection{};
};

// ---- entry points TensorRT looks up when it loads this library (trtexec --dynamicPlugins, load_library)
extern "C" void setLoggerFinder(ILoggerFinder* finder) {}

extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static GemPoolPluginCreator creator;
    static IPluginCreatorInterface* const creators[] = {&creator};
    nbCreators = 1;
    return creators;
}
