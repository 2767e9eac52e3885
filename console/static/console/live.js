/*
 * The identify page's live microphone: streams the microphone to WS /v1/voiceprint/stream
 * (docs/STREAMING.md) and shows the current speaker while they speak.
 *
 * Start: microphone (getUserMedia), a stream ticket from the console (POST, the page's CSRF
 * token), then the socket on this page's host (wss: under https:) with a first text message
 * {"type": "start", "ticket", "device_id", "agent_id"}. The audio goes as 100 ms binary
 * frames of 16 kHz 16-bit mono PCM, made by an AudioWorklet (pcm-worklet.js), or by a
 * ScriptProcessor where the browser has no AudioWorklet. Stop sends {"type": "stop"}; the
 * server answers with the last final, `end`, and close 1000.
 *
 * Markup: the [data-live] section of console/identify.html; its data-state (idle, starting,
 * streaming, stopping, closed, error) is what the browser tests wait on.
 */
(function () {
  "use strict";

  var LOG_LENGTH = 12;
  var FALLBACK_BLOCK = 4096;
  var CLOSE_WORDS = {
    1000: "the stream ended normally",
    1001: "the server is shutting down",
    1006: "the connection was lost (or the server does not take WebSockets here)",
    1011: "an unexpected server error",
    1013: "the database or the embedding service is unavailable: try again later",
    4400: "the stream sent something the server does not accept",
    4401: "not authenticated: the ticket is missing, invalid, expired or already used",
    4403: "not allowed to stream for this device",
    4404: "no such device",
    4408: "nothing was sent for too long",
    4409: "the device's voices were enrolled with another engine (reembed them)",
    4413: "the stream reached its longest allowed length",
    4429: "too many streams are open for this tenant, or the address is locked out"
  };
  var DECISION_WORDS = { match: "match", uncertain: "uncertain", no_match: "no match" };

  function closeWords(code, reason) {
    var words = CLOSE_WORDS[code] || "closed";
    return "Closed (code " + code + "): " + words + (reason ? " — " + reason : "") + ".";
  }

  function yesNo(value) {
    if (value === null || value === undefined) {
      return null;
    }
    return value === true || value === "true" ? "yes" : "no";
  }

  function Live(root) {
    var q = function (name) { return root.querySelector("[data-live-" + name + "]"); };
    this.root = root;
    this.device = q("device");
    this.agent = q("agent");
    this.startButton = q("start");
    this.stopButton = q("stop");
    this.status = q("status");
    this.speech = q("speech");
    this.name = q("name");
    this.decision = q("decision");
    this.interrupt = q("interrupt");
    this.scoreBar = q("score-bar");
    this.thresholdMark = q("threshold");
    this.score = q("score");
    this.log = q("log");
    this.speaker = root.querySelector(".console-live-speaker");
    this.startButton.addEventListener("click", this.start.bind(this));
    this.stopButton.addEventListener("click", this.stop.bind(this));
    if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) {
      this.startButton.disabled = true;
      this.say("idle", "The live microphone needs a browser microphone over HTTPS (or localhost).");
    }
  }

  Live.prototype.say = function (state, message) {
    this.root.dataset.state = state;
    this.status.textContent = message;
  };

  Live.prototype.start = function () {
    var self = this;
    self.startButton.disabled = true;
    self.device.disabled = self.agent.disabled = true;
    self.clearSpeaker();
    self.log.textContent = "";
    self.pendingFrames = [];
    self.ready = false;
    self.say("starting", "Waiting for the microphone…");
    self.capture()
      .then(function () {
        self.say("starting", "Getting a stream ticket…");
        return self.fetchTicket();
      })
      .then(function (ticket) {
        self.say("starting", "Connecting…");
        self.connect(ticket);
      })
      .catch(function (error) {
        self.release();
        self.finish("error", error.message);
      });
  };

  Live.prototype.csrfToken = function () {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  };

  Live.prototype.fetchTicket = function () {
    var body = new FormData();
    body.append("device", this.device.value);
    return fetch(this.root.dataset.ticketUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": this.csrfToken() }
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("No stream ticket (HTTP " + response.status + "): is the device yours, " +
          "and are you still logged in?");
      }
      return response.json();
    });
  };

  /* The microphone, as 100 ms PCM frames handed to this.sendFrame. */
  Live.prototype.capture = function () {
    var self = this;
    var constraints = { audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false } };
    return navigator.mediaDevices.getUserMedia(constraints).then(function (stream) {
      var AudioContext = window.AudioContext || window.webkitAudioContext;
      self.stream = stream;
      self.context = new AudioContext();
      self.source = self.context.createMediaStreamSource(stream);
      var send = self.sendFrame.bind(self);
      if (self.context.audioWorklet) {
        self.root.dataset.capture = "worklet";
        return self.context.audioWorklet.addModule(self.root.dataset.workletUrl).then(function () {
          self.processor = new AudioWorkletNode(self.context, "voiceprint-pcm");
          self.processor.port.onmessage = function (event) { send(event.data); };
          self.source.connect(self.processor);
          // Its output is silence; connected so that every browser keeps pulling it.
          self.processor.connect(self.context.destination);
        });
      }
      // No AudioWorklet (an old browser): the same framing on the main thread.
      self.root.dataset.capture = "script-processor";
      var framer = new window.VoiceprintPcm.PcmFramer(self.context.sampleRate, send);
      self.processor = self.context.createScriptProcessor(FALLBACK_BLOCK, 1, 1);
      self.processor.onaudioprocess = function (event) {
        framer.push(event.inputBuffer.getChannelData(0));
      };
      self.source.connect(self.processor);
      self.processor.connect(self.context.destination);
    }).catch(function (error) {
      throw new Error("The microphone could not be used: " + error.message);
    });
  };

  Live.prototype.connect = function (ticket) {
    var self = this;
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(scheme + "//" + window.location.host + self.root.dataset.streamPath);
    socket.binaryType = "arraybuffer";
    self.socket = socket;
    socket.onopen = function () {
      socket.send(JSON.stringify({
        type: "start",
        ticket: ticket.ticket,
        device_id: ticket.device_id,
        agent_id: self.agent.value.trim() || null,
        sample_rate: 16000
      }));
      self.stopButton.disabled = false;
    };
    socket.onmessage = function (message) {
      if (typeof message.data === "string") {
        self.handle(JSON.parse(message.data));
      }
    };
    socket.onclose = function (event) {
      self.release();
      var failed = self.root.dataset.state === "error" || event.code !== 1000;
      var words = closeWords(event.code, event.reason);
      self.finish(failed ? "error" : "closed", self.errorText ? self.errorText + " " + words : words);
    };
  };

  Live.prototype.sendFrame = function (buffer) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      return;
    }
    if (!this.ready) {
      this.pendingFrames.push(buffer); // spoken before `ready`: sent once it comes
      return;
    }
    this.socket.send(buffer);
  };

  Live.prototype.handle = function (event) {
    var handler = this["on_" + event.type];
    if (handler) {
      handler.call(this, event);
    }
  };

  Live.prototype.on_ready = function (event) {
    var socket = this.socket;
    this.ready = true;
    this.pendingFrames.forEach(function (buffer) { socket.send(buffer); });
    this.pendingFrames = [];
    this.say("streaming", "Listening on device " + event.device_id +
      (event.agent_id ? " for agent " + event.agent_id : "") + ": speak now.");
  };

  Live.prototype.on_speech_start = function (event) {
    this.speech.classList.add("on");
    this.addLog(event, "speech starts");
  };

  Live.prototype.on_speech_end = function (event) {
    this.speech.classList.remove("on");
    var why = event.identified ? "" : " (" + (event.reason || "not identified").replace(/_/g, " ") + ")";
    var seconds = typeof event.speech_seconds === "number" ? ", " + event.speech_seconds.toFixed(1) + " s" : "";
    this.addLog(event, "speech ends" + seconds + why);
  };

  Live.prototype.on_partial = function (event) {
    this.showSpeaker(event, "partial");
    this.addLog(event, "partial: " + this.describe(event));
  };

  Live.prototype.on_final = function (event) {
    this.showSpeaker(event, "final");
    this.addLog(event, "final: " + this.describe(event));
  };

  Live.prototype.on_speaker_change = function (event) {
    var name = function (side) { return (side && side.voice_name) || "nobody"; };
    this.addLog(event, "speaker change: " + name(event.from) + " → " + name(event.to));
  };

  Live.prototype.on_error = function (event) {
    this.errorText = "Error " + event.code + ": " + event.msg + ".";
    this.say("error", this.errorText);
  };

  Live.prototype.on_end = function (event) {
    this.addLog(event, "end, " + event.utterances + " utterance(s)");
  };

  Live.prototype.speakerName = function (event) {
    if (event.voice_name) {
      return event.voice_name;
    }
    return event.decision === "uncertain" ? "Not sure who" : "Unknown speaker";
  };

  Live.prototype.describe = function (event) {
    var score = typeof event.score === "number" ? " " + event.score.toFixed(3) : "";
    return this.speakerName(event) + ", " + (DECISION_WORDS[event.decision] || event.decision) + score;
  };

  Live.prototype.showSpeaker = function (event, kind) {
    this.speaker.dataset.decision = event.decision || "";
    this.speaker.dataset.kind = kind;
    this.name.textContent = this.speakerName(event);
    this.decision.textContent = DECISION_WORDS[event.decision] || event.decision || "";
    this.decision.className = "console-live-decision " + (event.decision || "");
    var interrupt = yesNo(event.interrupt);
    this.interrupt.textContent = interrupt === null ? "" : "interrupt: " + interrupt;
    this.interrupt.className = "console-live-interrupt " + (interrupt || "");
    var clamp = function (x) { return Math.max(0, Math.min(1, x)); };
    if (typeof event.score === "number") {
      this.scoreBar.style.width = (100 * clamp(event.score)).toFixed(1) + "%";
      this.score.textContent = "score " + event.score.toFixed(3) +
        (typeof event.threshold === "number" ? " / threshold " + event.threshold.toFixed(3) : "");
    } else {
      this.scoreBar.style.width = "0";
      this.score.textContent = "no voice to compare with";
    }
    if (typeof event.threshold === "number") {
      this.thresholdMark.style.left = (100 * clamp(event.threshold)).toFixed(1) + "%";
      this.thresholdMark.hidden = false;
    }
  };

  Live.prototype.clearSpeaker = function () {
    this.speaker.dataset.decision = "";
    this.speaker.dataset.kind = "";
    this.name.textContent = "—";
    this.decision.textContent = this.interrupt.textContent = this.score.textContent = "";
    this.decision.className = "console-live-decision";
    this.scoreBar.style.width = "0";
    this.thresholdMark.hidden = true;
    this.speech.classList.remove("on");
    this.errorText = "";
  };

  Live.prototype.addLog = function (event, text) {
    var item = document.createElement("li");
    item.dataset.type = event.type;
    var at = typeof event.at === "number" ? event.at.toFixed(1) + " s" : "";
    var utterance = event.utterance ? "#" + event.utterance + " " : "";
    item.textContent = at + " · " + utterance + text;
    this.log.insertBefore(item, this.log.firstChild);
    while (this.log.children.length > LOG_LENGTH) {
      this.log.removeChild(this.log.lastChild);
    }
  };

  Live.prototype.stop = function () {
    this.stopButton.disabled = true;
    this.release(); // no more audio: the server ends the utterance, sends `end`, and closes
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "stop" }));
      this.say("stopping", "Stopping: waiting for the last decision…");
    } else if (this.socket) {
      this.socket.close();
    }
  };

  /* Stops the microphone; the socket, if any, is left to close. */
  Live.prototype.release = function () {
    if (this.processor) {
      this.processor.disconnect();
      this.processor = null;
    }
    if (this.source) {
      this.source.disconnect();
      this.source = null;
    }
    if (this.stream) {
      this.stream.getTracks().forEach(function (track) { track.stop(); });
      this.stream = null;
    }
    if (this.context) {
      this.context.close();
      this.context = null;
    }
  };

  Live.prototype.finish = function (state, message) {
    this.socket = null;
    this.speech.classList.remove("on");
    this.startButton.disabled = false;
    this.stopButton.disabled = true;
    this.device.disabled = this.agent.disabled = false;
    this.say(state, message);
  };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(function (root) {
      new Live(root);
    });
  });
})();
