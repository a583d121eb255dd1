// Runs the nsfwjs@4.3.0 MobileNetV2 in pure-JavaScript tfjs (CPU backend)
// on a synthetic image and writes the reference that
// tests/test_weights_mobilenetv2.c compares oddone's forward against.
//
// Usage (from tests/oracle, after `npm install` and scripts/fetch_weights.sh):
//     node mobilenetv2.cjs
// Writes ../ref/teacher_mobilenetv2_input.png (224 x 224 RGB) and
// ../ref/teacher_mobilenetv2.safetensors with
//     logits              (5)   dense_3 before the softmax
//     probabilities       (5)   the model's output
//     block_13_expand_relu_every4 (14, 14, 144)  channels 0, 4, 8, ... 572
// The model is loaded straight from the package's files, which tfjs
// dequantizes itself, so the check covers the converter too.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const tf = require('@tensorflow/tfjs');

const root = path.resolve(__dirname, '..', '..');
const modelDir = path.join(root, 'models', 'cache', 'package', 'dist', 'models', 'mobilenet_v2');
const refDir = path.join(root, 'tests', 'ref');
const SIZE = 224;
const CHANNEL_STEP = 4;

// A deterministic image with smooth gradients, a disc and a stripe
// pattern, so that every block gets structure at several scales and the
// PNG stays small.
function makeImage() {
    const rgb = new Uint8Array(SIZE * SIZE * 3);
    for (let y = 0; y < SIZE; y++) {
        for (let x = 0; x < SIZE; x++) {
            let r = 40 + (180 * x) / SIZE, g = 60 + (150 * y) / SIZE, b = 120;
            const dx = x - 140, dy = y - 90;
            if (dx * dx + dy * dy < 45 * 45) { r = 230; g = 200 - dy; b = 40; }
            if (y > 150 && y < 200 && Math.floor(x / 8) % 2 === 0) { r *= 0.3; g *= 0.3; b = 220; }
            const i = (y * SIZE + x) * 3;
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

async function main() {
    await tf.setBackend('cpu');
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
    const model = await tf.loadLayersModel({
        load: async () => ({ modelTopology: json.modelTopology, weightSpecs, weightData }),
    });

    const rgb = makeImage();
    fs.mkdirSync(refDir, { recursive: true });
    writePng(path.join(refDir, 'teacher_mobilenetv2_input.png'), rgb, SIZE, SIZE);

    // The package's preprocessing: toFloat().div(255), no resize at 224.
    const input = tf.tensor(Int32Array.from(rgb), [1, SIZE, SIZE, 3], 'int32').toFloat().div(tf.scalar(255));
    const probe = tf.model({
        inputs: model.inputs,
        outputs: [model.getLayer('block_13_expand_relu').output, model.getLayer('dense_2').output,
                  model.outputs[0]],
    });
    const [mid, dense2, probs] = probe.predict(input);
    const [w3, b3] = model.getLayer('dense_3').getWeights();
    const logits = dense2.matMul(w3).add(b3);

    const midData = await mid.data();
    const channels = mid.shape[3];
    const kept = Math.ceil(channels / CHANNEL_STEP);
    const sub = new Float32Array(mid.shape[1] * mid.shape[2] * kept);
    for (let p = 0; p < mid.shape[1] * mid.shape[2]; p++)
        for (let k = 0; k < kept; k++) sub[p * kept + k] = midData[p * channels + k * CHANNEL_STEP];

    // Time the full forward in pure JavaScript (CPU backend), after a warm-up run.
    tf.tidy(() => model.predict(input));
    const runs = 3;
    const start = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) {
        const out = model.predict(input);
        await out.data();
        out.dispose();
    }
    const ms = Number(process.hrtime.bigint() - start) / 1e6 / runs;

    writeSafetensors(path.join(refDir, 'teacher_mobilenetv2.safetensors'), {
        logits: { shape: [5], data: Float32Array.from(await logits.data()) },
        probabilities: { shape: [5], data: Float32Array.from(await probs.data()) },
        block_13_expand_relu_every4: { shape: [mid.shape[1], mid.shape[2], kept], data: sub },
    }, {
        producer: 'tests/oracle/mobilenetv2.cjs',
        runtime: '@tensorflow/tfjs ' + tf.version.tfjs + ' backend ' + tf.getBackend(),
        channel_step: String(CHANNEL_STEP),
        ms_per_forward: ms.toFixed(1),
    });
    console.log('logits', Array.from(await logits.data()).map((v) => v.toFixed(5)).join(' '));
    console.log('block_13_expand_relu', mid.shape.join('x'), 'max', Math.max(...midData).toFixed(4));
    console.log('tfjs ' + tf.getBackend() + ' backend: ' + ms.toFixed(1) + ' ms per 224 x 224 forward');
}

main().catch((e) => { console.error(e); process.exit(1); });
