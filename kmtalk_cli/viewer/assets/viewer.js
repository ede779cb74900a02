/* kmtalk viewer (part of kmtalk, MIT): plays an embedded .glb's animation (the face's morph
 * targets, and the jaw, eye and head nodes of the bundled head's parts) in sync with its
 * embedded speech. Everything it needs is inline in the page, so it works from
 * file:// with no network. While audio plays, the audio element's clock drives the animation;
 * otherwise (no audio, or past its end) a wall clock does. */
(function () {
  'use strict';
  const THREE = window.KMTALK_THREE;
  const $ = (id) => document.getElementById(id);
  const config = JSON.parse($('kmtalk-config').textContent);
  const audio = $('kmtalk-audio');
  const hasAudio = audio.hasAttribute('src');
  const COLORS = ['#ff6b6b', '#4ecb71', '#6ea8fe', '#ffb347', '#c792ea', '#4dd0e1'];
  const PLOTTED = 6;

  const state = {
    mesh: null, mixer: null, action: null, track: null,
    clipDuration: 0, duration: 0, playing: false,
    clockOffset: 0, clockStart: 0, plotted: [], curves: null, legend: [],
  };

  function fail(error) {
    const text = 'Could not show this animation: ' + ((error && error.message) || error);
    $('message').textContent = text;
    $('message').hidden = false;
    window.kmtalkViewer = { ready: false, error: text };
    console.error(text);
  }

  function decodeBase64(text) {
    const raw = atob(text.trim());
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  const clamp = (x, lo, hi) => Math.min(Math.max(x, lo), hi);
  const wallClock = () => performance.now() / 1000;

  // ---- 3-D view --------------------------------------------------------------------------
  const canvas = $('view');
  const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  renderer.outputColorSpace = THREE.SRGBColorSpace;
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0x1d2026);
  const camera = new THREE.PerspectiveCamera(28, 1, 0.005, 50);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x3a3a46, 0.9));
  const keyLight = new THREE.DirectionalLight(0xffffff, 1.8);
  keyLight.position.set(0.5, 0.7, 1.0);
  scene.add(keyLight);
  const fill = new THREE.DirectionalLight(0xb8c8ff, 0.6);
  fill.position.set(-0.8, 0.1, 0.6);
  scene.add(fill);
  const controls = new THREE.OrbitControls(camera, canvas);
  controls.enableDamping = false;
  controls.addEventListener('change', () => render());

  function render() {
    renderer.render(scene, camera);
  }

  function frameCamera(object) {
    const box = new THREE.Box3().setFromObject(object);
    const size = box.getSize(new THREE.Vector3());
    const centre = box.getCenter(new THREE.Vector3());
    // Fit the head's height (or width) at about the depth of the cheeks, with a small margin.
    const half = 0.5 * Math.max(size.y, size.x / Math.max(camera.aspect, 0.1)) * 1.04;
    const distance = half / Math.tan((camera.fov * Math.PI) / 360) + 0.2 * size.z;
    camera.position.set(centre.x, centre.y, centre.z + distance);
    camera.near = distance / 100;
    camera.far = distance * 10;
    camera.updateProjectionMatrix();
    controls.target.copy(centre);
    controls.update();
  }

  // ---- time ------------------------------------------------------------------------------
  function currentTime() {
    if (!state.playing) return state.clockOffset;
    if (hasAudio && !audio.paused) return audio.currentTime;
    return state.clockOffset + wallClock() - state.clockStart;
  }

  function audioLength() {
    return hasAudio && Number.isFinite(audio.duration) ? audio.duration : 0;
  }

  function setPlaying(playing) {
    state.playing = playing;
    $('play').textContent = playing ? 'Pause' : 'Play';
  }

  function seek(t) {
    t = clamp(Number(t) || 0, 0, state.duration);
    state.clockOffset = t;
    state.clockStart = wallClock();
    if (hasAudio) {
      const inside = t < audioLength();
      audio.currentTime = inside ? t : audioLength();
      if (state.playing && inside && audio.paused) audio.play().catch(fail);
    }
    showAt(t);
    return t;
  }

  function play() {
    let t = currentTime();
    if (t >= state.duration - 1e-3) t = 0;
    setPlaying(true);
    seek(t);
    if (hasAudio && t < audioLength()) audio.play().catch(fail);
  }

  function pause() {
    state.clockOffset = currentTime();
    setPlaying(false);
    if (hasAudio) audio.pause();
    showAt(state.clockOffset);
  }

  // When the speech ends before the motion, the wall clock carries on from the audio's end.
  audio.addEventListener('ended', () => {
    state.clockOffset = audioLength();
    state.clockStart = wallClock();
  });
  audio.addEventListener('loadedmetadata', () => {
    if (!state.mesh) return;
    setDuration();
    drawCurves();
    showAt(currentTime());
  });

  function setDuration() {
    state.duration = Math.max(state.clipDuration, audioLength());
    $('scrub').max = String(state.duration);
  }

  function showAt(t) {
    if (state.action && state.clipDuration > 0) {
      state.action.time = clamp(t, 0, state.clipDuration * (1 - 1e-9));
      state.mixer.update(0);
    } else if (state.track) {
      const P = state.mesh.morphTargetInfluences.length;
      for (let k = 0; k < P; k++) state.mesh.morphTargetInfluences[k] = state.track.values[k];
    }
    $('scrub').value = String(t);
    $('clock').textContent = t.toFixed(2) + ' / ' + state.duration.toFixed(2) + ' s';
    for (const item of state.legend) {
      item.value.textContent = state.mesh.morphTargetInfluences[item.index].toFixed(2);
    }
    drawPlot(t);
    render();
  }

  function tick() {
    if (state.playing) {
      let t = currentTime();
      if (t >= state.duration) {
        t = state.duration;
        state.clockOffset = t;
        setPlaying(false);
        if (hasAudio) audio.pause();
      }
      showAt(t);
    }
    requestAnimationFrame(tick);
  }

  // ---- weights plot ----------------------------------------------------------------------
  const plot = $('plot');

  function choosePlotted(names) {
    const P = names.length;
    const values = state.track.values;
    const frames = values.length / P;
    const spans = [];
    for (let k = 0; k < P; k++) {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < frames; i++) {
        const v = values[i * P + k];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      spans.push({ index: k, span: hi - lo, lo, hi });
    }
    spans.sort((a, b) => b.span - a.span);
    // The most active few, shown in the file's target order so colours stay put between files.
    return spans.filter((s) => s.span > 1e-6).slice(0, PLOTTED).sort((a, b) => a.index - b.index);
  }

  function buildLegend(names) {
    const list = $('legend');
    list.textContent = '';
    state.legend = state.plotted.map((item, i) => {
      const li = document.createElement('li');
      const swatch = document.createElement('i');
      swatch.style.background = COLORS[i];
      const name = document.createElement('b');
      name.textContent = names[item.index];
      name.title = names[item.index];
      const value = document.createElement('em');
      li.append(swatch, name, value);
      list.append(li);
      return { index: item.index, value };
    });
    if (!state.plotted.length) list.textContent = 'No moving morph targets.';
  }

  function drawCurves() {
    const ratio = window.devicePixelRatio || 1;
    plot.width = Math.max(1, Math.round(plot.clientWidth * ratio));
    plot.height = Math.max(1, Math.round(plot.clientHeight * ratio));
    const curves = document.createElement('canvas');
    curves.width = plot.width;
    curves.height = plot.height;
    state.curves = curves;
    if (!state.plotted.length || state.duration <= 0) return;
    const ctx = curves.getContext('2d');
    const P = state.mesh.morphTargetInfluences.length;
    const times = state.track.times;
    const values = state.track.values;
    const lo = Math.min(0, ...state.plotted.map((s) => s.lo));
    const hi = Math.max(lo + 1e-6, ...state.plotted.map((s) => s.hi));
    const pad = 6 * ratio;
    const x = (t) => (t / state.duration) * curves.width;
    const y = (v) => curves.height - pad - ((v - lo) / (hi - lo)) * (curves.height - 2 * pad);
    ctx.strokeStyle = 'rgba(255,255,255,0.12)';
    ctx.lineWidth = ratio;
    ctx.beginPath();
    ctx.moveTo(0, y(0));
    ctx.lineTo(curves.width, y(0));
    ctx.stroke();
    ctx.lineWidth = 1.5 * ratio;
    state.plotted.forEach((item, i) => {
      ctx.strokeStyle = COLORS[i];
      ctx.beginPath();
      for (let f = 0; f < times.length; f++) {
        const px = x(times[f]);
        const py = y(values[f * P + item.index]);
        if (f === 0) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      }
      ctx.stroke();
    });
  }

  function drawPlot(t) {
    if (!state.curves) return;
    const ctx = plot.getContext('2d');
    ctx.clearRect(0, 0, plot.width, plot.height);
    ctx.drawImage(state.curves, 0, 0);
    if (state.duration > 0) {
      const px = (t / state.duration) * plot.width;
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = window.devicePixelRatio || 1;
      ctx.beginPath();
      ctx.moveTo(px, 0);
      ctx.lineTo(px, plot.height);
      ctx.stroke();
    }
  }

  function seekFromPlot(event) {
    const rect = plot.getBoundingClientRect();
    seek(((event.clientX - rect.left) / rect.width) * state.duration);
  }

  // ---- layout and wiring -----------------------------------------------------------------
  function resize() {
    const width = canvas.clientWidth, height = canvas.clientHeight;
    renderer.setSize(width, height, false);
    camera.aspect = width / Math.max(height, 1);
    camera.updateProjectionMatrix();
    if (state.mesh) {
      drawCurves();
      showAt(currentTime());
    }
  }

  function project(index) {
    const position = state.mesh.geometry.getAttribute('position');
    const point = new THREE.Vector3().fromBufferAttribute(position, index);
    point.applyMatrix4(state.mesh.matrixWorld).project(camera);
    const rect = canvas.getBoundingClientRect();
    return [rect.left + ((point.x + 1) / 2) * rect.width, rect.top + ((1 - point.y) / 2) * rect.height];
  }

  function start(gltf) {
    const root = gltf.scene;
    root.traverse((node) => {
      if (!state.mesh && node.isMesh && node.morphTargetInfluences) state.mesh = node;
    });
    if (!state.mesh) throw new Error('the file has no mesh with morph targets');
    scene.add(root);
    const names = new Array(state.mesh.morphTargetInfluences.length).fill('');
    for (const [name, k] of Object.entries(state.mesh.morphTargetDictionary || {})) names[k] = name;
    const clip = gltf.animations[0];
    if (clip) {
      state.track = clip.tracks.find((t) => t.name.endsWith('.morphTargetInfluences')) || null;
      state.clipDuration = clip.duration;
      state.mixer = new THREE.AnimationMixer(root);
      state.action = state.mixer.clipAction(clip);
      state.action.setLoop(THREE.LoopRepeat, Infinity);
      state.action.play();
    }
    setDuration();
    state.plotted = state.track ? choosePlotted(names) : [];
    buildLegend(names);
    const frames = config.frames || (state.track ? state.track.times.length : 0);
    $('summary').textContent = [
      frames + ' frames' + (config.fps ? ' at ' + config.fps + ' fps' : ''),
      names.length + ' morph targets' + (config.source ? ' (' + config.source + ')' : ''),
      hasAudio ? 'speech embedded' : 'no audio',
    ].join(' · ');
    $('message').hidden = true;
    resize();
    frameCamera(root);
    seek(0);
    for (const id of ['play', 'scrub']) $(id).disabled = false;
    $('play').addEventListener('click', () => (state.playing ? pause() : play()));
    $('scrub').addEventListener('input', (event) => seek(event.target.value));
    plot.addEventListener('pointerdown', (event) => {
      plot.setPointerCapture(event.pointerId);
      seekFromPlot(event);
    });
    plot.addEventListener('pointermove', (event) => {
      if (plot.hasPointerCapture(event.pointerId)) seekFromPlot(event);
    });
    window.addEventListener('keydown', (event) => {
      if (event.code === 'Space' && event.target.tagName !== 'BUTTON') {
        event.preventDefault();
        state.playing ? pause() : play();
      }
    });
    window.addEventListener('resize', resize);
    // The hook tests and scripts use: seek to a time, read the weights back, locate a vertex.
    window.kmtalkViewer = {
      ready: true,
      get duration() { return state.duration; },
      targetNames: names,
      seek,
      play,
      pause,
      time: currentTime,
      weights: () => Array.from(state.mesh.morphTargetInfluences),
      // A named node's current local rotation (x, y, z, w) and position: the head's parts
      // (jaw, eye_left, eye_right, head) are animated nodes of their own.
      node: (name) => {
        const found = root.getObjectByName(name);
        return found ? { rotation: found.quaternion.toArray(), position: found.position.toArray() } : null;
      },
      project,
    };
    requestAnimationFrame(tick);
  }

  try {
    const glb = decodeBase64($('kmtalk-glb').textContent);
    new THREE.GLTFLoader().parse(glb.buffer, '', (gltf) => {
      try { start(gltf); } catch (error) { fail(error); }
    }, fail);
  } catch (error) {
    fail(error);
  }
})();
