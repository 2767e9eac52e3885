/*
 * 16 kHz 16-bit mono PCM in 100 ms frames, from the microphone's float samples at any rate.
 *
 * Loaded twice: as an AudioWorklet module (registerProcessor exists there), where it turns
 * every 128-sample render quantum into PCM off the main thread and posts each full frame to
 * the page; and as a plain script of the page, where it only defines `VoiceprintPcm` for the
 * ScriptProcessor fallback of browsers without AudioWorklet (live.js).
 */
(function (scope) {
  "use strict";

  var TARGET_RATE = 16000;
  var FRAME_SAMPLES = 1600; // 100 ms at 16 kHz: 3200 bytes, within the stream's 20-200 ms

  /* Resamples a stream of float blocks to 16 kHz (each output sample the mean of the input
     samples it spans, a box filter against aliasing) and cuts it into Int16 frames. */
  function PcmFramer(inputRate, onFrame) {
    this.ratio = inputRate / TARGET_RATE;
    this.onFrame = onFrame;
    this.pending = new Float32Array(0); // input not yet consumed
    this.position = 0; // where the next output sample starts in `pending` (fractional)
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
  }

  PcmFramer.prototype.push = function (block) {
    var input = new Float32Array(this.pending.length + block.length);
    input.set(this.pending, 0);
    input.set(block, this.pending.length);
    var position = this.position;
    while (position + this.ratio <= input.length) {
      var start = Math.floor(position);
      var end = Math.max(start + 1, Math.floor(position + this.ratio));
      var sum = 0;
      for (var i = start; i < end; i++) {
        sum += input[i];
      }
      this.emit(sum / (end - start));
      position += this.ratio;
    }
    var keep = Math.floor(position);
    this.pending = input.slice(keep);
    this.position = position - keep;
  };

  PcmFramer.prototype.emit = function (sample) {
    var s = Math.max(-1, Math.min(1, sample));
    this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    if (this.filled === FRAME_SAMPLES) {
      this.onFrame(this.frame.buffer);
      this.frame = new Int16Array(FRAME_SAMPLES);
      this.filled = 0;
    }
  };

  if (typeof scope.registerProcessor === "function") {
    // A class only here: the worklet scope has AudioWorkletProcessor, the page may not.
    class PcmProcessor extends scope.AudioWorkletProcessor {
      constructor() {
        super();
        var port = this.port;
        this.framer = new PcmFramer(scope.sampleRate, function (buffer) {
          port.postMessage(buffer, [buffer]);
        });
      }

      process(inputs) {
        var channels = inputs[0];
        if (channels && channels.length) {
          this.framer.push(channels[0]);
        }
        return true;
      }
    }
    scope.registerProcessor("voiceprint-pcm", PcmProcessor);
  } else {
    scope.VoiceprintPcm = { PcmFramer: PcmFramer, TARGET_RATE: TARGET_RATE };
  }
})(typeof globalThis !== "undefined" ? globalThis : self);
