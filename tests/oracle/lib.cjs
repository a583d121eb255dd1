// Helpers shared by the oracle scripts: the synthetic input image, PNG and
// safetensors writers, and loading an nsfwjs model from the package files.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const tf = require('@tensorflow/tfjs');

const root = path.resolve(__dirname, '..', '..');
const refDir = path.join(root, 'tests', 'ref');

// A deterministic size x size RGB image with smooth gradients, a disc and
// a stripe pattern, so that every block gets structure at several scales
// and the PNG stays small. Coordinates scale with the size.
function makeImage(size) {
    const rgb = new Uint8Array(size * size * 3);
    const u = size / 224;
    for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
            let r = 40 + (180 * x) / size, g = 60 + (150 * y) / size, b = 120;
            const dx = x / u - 140, dy = y / u - 90;
            if (dx * dx + dy * dy < 45 * 45) { r = 230; g = 200 - dy; b = 40; }
            if (y / u > 150 && y / u < 200 && Math.floor(x / u / 8) % 2 === 0) { r *= 0.3; g *= 0.3; b = 220; }
            const i = (y * size + x) * 3;
            rgb[i] = Math.round(r); rgb[i + 1] = Math.round(g); rgb[i + 2] = Math.round(b);
        }
    }
    return rgb;
}

const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        t[n] = c >>> 0;
    }
    return t;
})();

function crc32(buf) {
    let c = 0xffffffff;
    for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
}

function writePng(file, rgb, width, height) {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
    const raw = Buffer.alloc(height * (1 + width * 3));
    for (let y = 0; y < height; y++) {
        raw[y * (1 + width * 3)] = 0; // filter: none
        Buffer.from(rgb.buffer, y * width * 3, width * 3).copy(raw, y * (1 + width * 3) + 1);
    }
    fs.writeFileSync(file, Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        pngChunk('IHDR', ihdr),
        pngChunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
        pngChunk('IEND', Buffer.alloc(0)),
    ]));
}

function writeSafetensors(file, tensors, metadata) {
    const header = { __metadata__: metadata };
    let size = 0;
    for (const [name, t] of Object.entries(tensors)) {
        header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [size, size + 4 * t.data.length] };
        size += 4 * t.data.length;
    }
    let text = JSON.stringify(header);
    text += ' '.repeat((8 - (text.length % 8)) % 8);
    const head = Buffer.from(text, 'utf8');
    const out = Buffer.alloc(8 + head.length + size);
    out.writeBigUInt64LE(BigInt(head.length), 0);
    head.copy(out, 8);
    let at = 8 + head.length;
    for (const t of Object.values(tensors)) {
        Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at);
        at += t.data.byteLength;
    }
    fs.writeFileSync(file, out);
}

// Loads a model from the package's model.min.js and weight shards, which
// tfjs dequantizes itself, so the check covers the converter too.
async function loadPackageModel(name) {
    const modelDir = path.join(root, 'models', 'cache', 'package', 'dist', 'models', name);
    const json = require(path.join(modelDir, 'model.min.js'));
    const weightSpecs = [];
    const shards = [];
    for (const group of json.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths)
            shards.push(Buffer.from(require(path.join(modelDir, p + '.min.js')), 'base64'));
    }
    const bytes = Buffer.concat(shards);
    const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
    return tf.loadLayersModel({
        load: async () => ({ modelTopology: json.modelTopology, weightSpecs, weightData }),
    });
}

// Runs the model on a size x size synthetic image with the package's
// preprocessing (toFloat().div(255), no resize at the model's size), and
// writes <prefix>_input.png and <prefix>.safetensors with
//     logits                  (5)  the last Dense layer before its softmax
//     probabilities           (5)  the model's output
//     <layer>_every<step>     (H, W, ceil(C / step))  channels 0, step, 2 step, ...
// Also times the forward in pure JavaScript (CPU backend).
async function writeReference(modelName, prefix, size, layerName, channelStep) {
    await tf.setBackend('cpu');
    const model = await loadPackageModel(modelName);
    const rgb = makeImage(size);
    fs.mkdirSync(refDir, { recursive: true });
    writePng(path.join(refDir, prefix + '_input.png'), rgb, size, size);

    const input = tf.tensor(Int32Array.from(rgb), [1, size, size, 3], 'int32').toFloat().div(tf.scalar(255));
    const probe = tf.model({
        inputs: model.inputs,
        outputs: [model.getLayer(layerName).output, model.getLayer('dense_2').output, model.outputs[0]],
    });
    const [mid, dense2, probs] = probe.predict(input);
    const [w3, b3] = model.getLayer('dense_3').getWeights();
    const logits = dense2.matMul(w3).add(b3);

    const midData = await mid.data();
    const channels = mid.shape[3];
    const kept = Math.ceil(channels / channelStep);
    const positions = mid.shape[1] * mid.shape[2];
    const sub = new Float32Array(positions * kept);
    for (let p = 0; p < positions; p++)
        for (let k = 0; k < kept; k++) sub[p * kept + k] = midData[p * channels + k * channelStep];

    tf.tidy(() => model.predict(input)); // warm-up
    const runs = 3;
    const start = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) {
        const out = model.predict(input);
        await out.data();
        out.dispose();
    }
    const ms = Number(process.hrtime.bigint() - start) / 1e6 / runs;

    const tensors = {
        logits: { shape: [5], data: Float32Array.from(await logits.data()) },
        probabilities: { shape: [5], data: Float32Array.from(await probs.data()) },
    };
    tensors[layerName + '_every' + channelStep] = { shape: [mid.shape[1], mid.shape[2], kept], data: sub };
    writeSafetensors(path.join(refDir, prefix + '.safetensors'), tensors, {
        producer: 'tests/oracle/' + path.basename(require.main.filename),
        runtime: '@tensorflow/tfjs ' + tf.version.tfjs + ' backend ' + tf.getBackend(),
        channel_step: String(channelStep),
        ms_per_forward: ms.toFixed(1),
    });
    console.log('logits', Array.from(await logits.data()).map((v) => v.toFixed(5)).join(' '));
    console.log(layerName, mid.shape.join('x'), 'max', midData.reduce((a, b) => (b > a ? b : a), -Infinity).toFixed(4));
    console.log('tfjs ' + tf.getBackend() + ' backend: ' + ms.toFixed(1) + ' ms per ' + size + ' x ' + size + ' forward');
}

module.exports = { makeImage, writePng, writeSafetensors, loadPackageModel, writeReference };
