/*
 * Microphone recording for the console's upload forms.
 *
 * MediaRecorder produces WebM/Opus, which the server cannot decode, so this captures raw
 * PCM with the Web Audio API, downsamples it to 16 kHz mono and encodes a 16-bit WAV in the
 * browser. The WAV is put into the form's file input, so the form submits it like an upload.
 *
 * Markup: <div data-recorder data-input="ID of the file input"> with buttons [data-record],
 * [data-stop], a [data-status] element and an <audio data-preview>.
 */
(function () {
  "use strict";

  var TARGET_RATE = 16000;
  var MAX_SECONDS = 30;

  function downsample(samples, fromRate, toRate) {
    if (toRate >= fromRate) {
      return { samples: samples, rate: fromRate };
    }
    var ratio = fromRate / toRate;
    var out = new Float32Array(Math.floor(samples.length / ratio));
    for (var i = 0; i < out.length; i++) {
      // Average each output sample's span: a box filter against aliasing.
      var start = Math.floor(i * ratio);
      var end = Math.min(samples.length, Math.floor((i + 1) * ratio));
      var sum = 0;
      for (var j = start; j < end; j++) {
        sum += samples[j];
      }
      out[i] = sum / Math.max(1, end - start);
    }
    return { samples: out, rate: toRate };
  }

  function encodeWav(samples, rate) {
    var buffer = new ArrayBuffer(44 + samples.length * 2);
    var view = new DataView(buffer);
    function text(offset, value) {
      for (var i = 0; i < value.length; i++) {
        view.setUint8(offset + i, value.charCodeAt(i));
      }
    }
    text(0, "RIFF");
    view.setUint32(4, 36 + samples.length * 2, true);
    text(8, "WAVE");
    text(12, "fmt ");
    view.setUint32(16, 16, true); // fmt chunk size
    view.setUint16(20, 1, true); // PCM
    view.setUint16(22, 1, true); // mono
    view.setUint32(24, rate, true);
    view.setUint32(28, rate * 2, true); // byte rate
    view.setUint16(32, 2, true); // block align
    view.setUint16(34, 16, true); // bits per sample
    text(36, "data");
    view.setUint32(40, samples.length * 2, true);
    for (var i = 0; i < samples.length; i++) {
      var s = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([buffer], { type: "audio/wav" });
  }

  function concat(chunks) {
    var length = chunks.reduce(function (n, c) { return n + c.length; }, 0);
    var out = new Float32Array(length);
    var offset = 0;
    chunks.forEach(function (chunk) {
      out.set(chunk, offset);
      offset += chunk.length;
    });
    return out;
  }

  function Recorder(root) {
    this.root = root;
    this.input = document.getElementById(root.dataset.input);
    this.recordButton = root.querySelector("[data-record]");
    this.stopButton = root.querySelector("[data-stop]");
    this.status = root.querySelector("[data-status]");
    this.preview = root.querySelector("[data-preview]");
    this.recordButton.addEventListener("click", this.start.bind(this));
    this.stopButton.addEventListener("click", this.stop.bind(this));
    if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) {
      this.recordButton.disabled = true;
      this.say("unavailable", "Recording needs a browser microphone over HTTPS (or localhost).");
    }
  }

  Recorder.prototype.say = function (state, message) {
    this.root.dataset.state = state;
    this.status.textContent = message;
  };

  Recorder.prototype.start = function () {
    var self = this;
    self.recordButton.disabled = true;
    self.say("starting", "Waiting for the microphone…");
    navigator.mediaDevices
      .getUserMedia({ audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false } })
      .then(function (stream) {
        var AudioContext = window.AudioContext || window.webkitAudioContext;
        self.stream = stream;
        self.context = new AudioContext();
        self.chunks = [];
        self.source = self.context.createMediaStreamSource(stream);
        // ScriptProcessorNode is deprecated but universally available and needs no module
        // file; it hands over the raw samples, which is all this needs.
        self.processor = self.context.createScriptProcessor(4096, 1, 1);
        self.processor.onaudioprocess = function (event) {
          self.chunks.push(new Float32Array(event.inputBuffer.getChannelData(0)));
          var seconds = (self.chunks.length * 4096) / self.context.sampleRate;
          self.say("recording", "Recording… " + seconds.toFixed(1) + " s");
          if (seconds >= MAX_SECONDS) {
            self.stop();
          }
        };
        self.source.connect(self.processor);
        self.processor.connect(self.context.destination);
        self.stopButton.disabled = false;
        self.say("recording", "Recording… speak now.");
      })
      .catch(function (error) {
        self.recordButton.disabled = false;
        self.say("error", "The microphone could not be used: " + error.message);
      });
  };

  Recorder.prototype.stop = function () {
    if (!this.context) {
      return;
    }
    this.processor.disconnect();
    this.source.disconnect();
    this.stream.getTracks().forEach(function (track) { track.stop(); });
    var rate = this.context.sampleRate;
    this.context.close();
    this.context = null;
    var pcm = downsample(concat(this.chunks), rate, TARGET_RATE);
    var wav = encodeWav(pcm.samples, pcm.rate);
    var file = new File([wav], "microphone.wav", { type: "audio/wav" });
    var transfer = new DataTransfer();
    transfer.items.add(file);
    this.input.files = transfer.files;
    if (this.preview) {
      this.preview.src = URL.createObjectURL(wav);
      this.preview.hidden = false;
    }
    this.stopButton.disabled = true;
    this.recordButton.disabled = false;
    var seconds = pcm.samples.length / pcm.rate;
    this.say(
      "recorded",
      "Recorded " + seconds.toFixed(1) + " s (" + pcm.rate + " Hz mono WAV, recorded at " +
        rate + " Hz): ready to submit as microphone.wav."
    );
  };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-recorder]").forEach(function (root) {
      new Recorder(root);
    });
  });
})();
