/* evrs C ABI: the addresses of libevent's exported data symbols (evthread_lock_fns_,
 * event_global_current_base_, ...), which the Rust side defines.
 *
 * A program that reads one of them directly (libevent's own tests do) holds a copy of it:
 * the linker gives the executable a copy relocation, and the dynamic loader makes every
 * reference in the process use that copy. The library must use it too, so it must reach
 * the symbol through its GOT entry, as C code compiled -fPIC does for a global that may be
 * preempted. Rust does not promise that for its own statics; this file does. Internal:
 * not exported. */
extern char evthread_lock_fns_[], evthread_cond_fns_[], evthread_id_fn_[],
    evthread_lock_debugging_enabled_[], event_global_current_base_[], event_debug_logging_mask_[];

void *evrs_c_data(int which)
{
    switch (which) {
    case 0: return evthread_lock_fns_;
    case 1: return evthread_cond_fns_;
    case 2: return evthread_id_fn_;
    case 3: return evthread_lock_debugging_enabled_;
    case 4: return event_global_current_base_;
    case 5: return event_debug_logging_mask_;
    }
    return 0;
}
