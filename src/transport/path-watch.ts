// Watches the agent's socket path so that a transport can connect the moment the agent binds it,
// instead of polling. Linux inotify through fs.watch: the socket's directory is watched, or, while
// that directory does not exist, its nearest existing ancestor (re-armed deeper as the path appears).
import { type FSWatcher, statSync, watch } from 'node:fs';
import * as path from 'node:path';

/**
 * IOTTLY_SDK_TEST_FAULT=no-watch makes every watch fail, so that tests can check the polling
 * fallback (the native addon reads the same variable for its own faults). Applications must not set it.
 */
const WATCH_DISABLED = process.env.IOTTLY_SDK_TEST_FAULT === 'no-watch';

export class AgentPathWatch {
  private readonly dir: string;
  private readonly base: string;
  private watcher: FSWatcher | null = null;
  /** The directory watched now: the socket's own, or an ancestor while that one is missing. */
  private target = '';

  /** `onChange` is called (synchronously, from fs.watch's event) whenever the socket path may have changed. */
  constructor(
    socketPath: string,
    private readonly onChange: () => void,
  ) {
    const full = path.resolve(socketPath);
    this.dir = path.dirname(full);
    this.base = path.basename(full);
  }

  /** Whether a watch is in place now. */
  get active(): boolean {
    return this.watcher !== null;
  }

  /**
   * Start watching, or move the watch to the deepest existing directory of the path. Returns whether
   * a watch is in place (false: not supported here, watch limit reached, nothing on the path exists).
   */
  arm(): boolean {
    if (WATCH_DISABLED) return false;
    const target = nearestDirectory(this.dir);
    if (target === null) {
      this.close();
      return false;
    }
    if (this.watcher && target === this.target) return true;
    this.close();
    try {
      // Not persistent: the transport's own timer decides whether the process stays alive.
      const watcher = watch(target, { persistent: false }, (_event, name) => this.onEvent(name));
      // A watch that breaks (its directory removed, for one) is dropped; the next arm() starts over.
      watcher.on('error', () => {
        if (this.watcher === watcher) this.close();
        this.onChange();
      });
      this.watcher = watcher;
      this.target = target;
      return true;
    } catch {
      // ENOSPC (the inotify watch limit), EACCES, a platform without fs.watch: poll instead.
      return false;
    }
  }

  close(): void {
    const watcher = this.watcher;
    this.watcher = null;
    this.target = '';
    watcher?.close();
  }

  private onEvent(name: string | Buffer | null): void {
    if (this.target !== this.dir) {
      // Watching an ancestor: a directory of the path may have appeared (or gone). Follow it down.
      this.arm();
      if (this.target === this.dir) this.onChange();
      return;
    }
    if (name === null || String(name) === this.base) {
      this.onChange();
      return;
    }
    // Something else changed in the socket's directory: nothing to do unless the directory itself went.
    if (nearestDirectory(this.dir) !== this.dir) {
      this.arm();
      this.onChange();
    }
  }
}

/** `dir` if it is a directory, else its nearest ancestor that is; null if none can be found. */
function nearestDirectory(dir: string): string | null {
  let current = dir;
  for (;;) {
    try {
      if (statSync(current).isDirectory()) return current;
    } catch {
      // ENOENT, ENOTDIR, EACCES: look one level up.
    }
    const parent = path.dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}
