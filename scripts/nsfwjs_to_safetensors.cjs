// Converts one tfjs layers model from the nsfwjs npm package into a
// safetensors file in oddone's layouts.
//
// Usage: node nsfwjs_to_safetensors.cjs MODEL_DIR OUT.safetensors
// MODEL_DIR contains model.min.js (topology and weight manifest) and the
// group1-shard*.min.js files (base64 weight shards), as the package ships.
//
// What it does to each tensor:
// - dequantizes uint8 weights as tfjs does: value = q * scale + min, with
//   scale and min from the manifest (float32 result);
// - conv kernels (kH, kW, Cin, Cout) become (Cout, Cin, kH, kW), depthwise
//   kernels (kH, kW, C, 1) become (C, 1, kH, kW), dense kernels (in, out)
//   become (out, in): PyTorch's layouts;
// - batch norm parameters are stored unchanged; the C loader folds them
//   into the preceding convolution.
// Names are the manifest's ("block_13_expand/kernel", "bn_Conv1/gamma").
// The Keras topology goes into the metadata under "keras_topology".
'use strict';
const fs = require('fs');
const path = require('path');

function fail(message) {
    process.stderr.write('nsfwjs_to_safetensors: ' + message + '\n');
    process.exit(1);
}

const [modelDir, outPath] = process.argv.slice(2);
if (!modelDir || !outPath)
    fail('usage: node nsfwjs_to_safetensors.cjs MODEL_DIR OUT.safetensors');

const model = require(path.resolve(modelDir, 'model.min.js'));
if (!model.modelTopology || !Array.isArray(model.weightsManifest))
    fail(modelDir + '/model.min.js has no modelTopology and weightsManifest');

const tensors = [];
for (const group of model.weightsManifest) {
    const shards = group.paths.map((p) => {
        const text = require(path.resolve(modelDir, p + '.min.js'));
        if (typeof text !== 'string')
            fail(p + '.min.js does not export a base64 string');
        return Buffer.from(text, 'base64');
    });
    const bytes = Buffer.concat(shards);
    let offset = 0;
    for (const w of group.weights) {
        const count = w.shape.reduce((a, b) => a * b, 1);
        const values = new Float32Array(count);
        if (w.quantization) {
            const q = w.quantization;
            if (q.dtype !== 'uint8')
                fail(w.name + ': quantization dtype ' + q.dtype + ' is not handled');
            for (let i = 0; i < count; i++)
                values[i] = bytes[offset + i] * q.scale + q.min;
            offset += count;
        } else {
            if (w.dtype !== 'float32')
                fail(w.name + ': dtype ' + w.dtype + ' is not handled');
            for (let i = 0; i < count; i++)
                values[i] = bytes.readFloatLE(offset + 4 * i);
            offset += 4 * count;
        }
        tensors.push({ name: w.name, shape: w.shape, values });
    }
    if (offset !== bytes.length)
        fail('weight group of ' + group.paths.join(',') + ' has ' + bytes.length +
             ' bytes, the manifest describes ' + offset);
}

// Moves axes: out[perm-ordered index] = in[index]; returns new shape and data.
function transpose(shape, values, perm) {
    const ndim = shape.length;
    const outShape = perm.map((p) => shape[p]);
    const inStrides = new Array(ndim);
    let s = 1;
    for (let d = ndim - 1; d >= 0; d--) { inStrides[d] = s; s *= shape[d]; }
    const out = new Float32Array(values.length);
    const idx = new Array(ndim).fill(0);
    for (let o = 0; o < values.length; o++) {
        let src = 0;
        for (let d = 0; d < ndim; d++) src += idx[d] * inStrides[perm[d]];
        out[o] = values[src];
        for (let d = ndim - 1; d >= 0; d--) {
            if (++idx[d] < outShape[d]) break;
            idx[d] = 0;
        }
    }
    return { shape: outShape, values: out };
}

for (const t of tensors) {
    const leaf = t.name.split('/').pop();
    if ((leaf === 'kernel' || leaf === 'depthwise_kernel') && t.shape.length === 4) {
        // (kH, kW, Cin, Cout) -> (Cout, Cin, kH, kW); depthwise (kH, kW, C, 1) -> (C, 1, kH, kW)
        const perm = leaf === 'kernel' ? [3, 2, 0, 1] : [2, 3, 0, 1];
        Object.assign(t, transpose(t.shape, t.values, perm));
    } else if (leaf === 'kernel' && t.shape.length === 2) {
        Object.assign(t, transpose(t.shape, t.values, [1, 0]));
    }
}

const header = {
    __metadata__: {
        producer: 'scripts/nsfwjs_to_safetensors.cjs',
        source: 'nsfwjs@4.3.0 ' + path.basename(path.resolve(modelDir)),
        layouts: 'conv (Cout, Cin/groups, kH, kW); dense (out, in); batch norm unfolded',
        keras_topology: JSON.stringify(model.modelTopology.model_config),
    },
};
let dataSize = 0;
for (const t of tensors) {
    if (header[t.name]) fail('duplicate tensor name ' + t.name);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [dataSize, dataSize + 4 * t.values.length] };
    dataSize += 4 * t.values.length;
}
let headerText = JSON.stringify(header);
headerText += ' '.repeat((8 - (headerText.length % 8)) % 8);
const headerBytes = Buffer.from(headerText, 'utf8');
const out = Buffer.alloc(8 + headerBytes.length + dataSize);
out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
headerBytes.copy(out, 8);
let at = 8 + headerBytes.length;
for (const t of tensors) {
    Buffer.from(t.values.buffer, t.values.byteOffset, t.values.byteLength).copy(out, at);
    at += t.values.byteLength;
}
const tmp = outPath + '.tmp';
fs.writeFileSync(tmp, out);
fs.renameSync(tmp, outPath);
console.log('wrote ' + outPath + ': ' + tensors.length + ' tensors, ' + dataSize + ' bytes of weights');
